package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxJSONDepth bounds the nesting of an event; ours needs 3 levels.
const maxJSONDepth = 16

// strictNames are the attribute and data field names of the contract.
// encoding/json matches struct fields case-insensitively and lets the last
// of duplicate keys win; CloudEvents names are case-sensitive, and another
// reader may take the first duplicate. So an event whose keys repeat, or
// differ from these names only by case, is malformed: every reader must
// see the same id, type and data.
var strictNames = []string{
	"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "expectedversion", "data",
	"name", "email", "address", "reason", "line1", "line2", "city", "postal_code", "country",
}

// checkJSON walks a JSON document and rejects duplicate keys, keys that
// differ from a contract name only by case, and nesting beyond
// maxJSONDepth. It does not check types; decoding does.
func checkJSON(value []byte) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := walk(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func walk(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= maxJSONDepth {
		return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	switch delim {
	case '[':
		for dec.More() {
			if err := walk(dec, depth+1); err != nil {
				return err
			}
		}
	case '{':
		seen := map[string]struct{}{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("not a JSON object: %w", err)
			}
			key, _ := keyTok.(string) // object keys are always strings
			if _, dup := seen[key]; dup {
				return fmt.Errorf("duplicate key %q", key)
			}
			seen[key] = struct{}{}
			if depth < 3 {
				if err := checkCase(key); err != nil {
					return err
				}
			}
			if err := walk(dec, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("not a JSON object: %w", err)
	}
	return nil
}

func checkCase(key string) error {
	for _, name := range strictNames {
		if key != name && strings.EqualFold(key, name) {
			return fmt.Errorf("key %q must be spelled %q: names are case-sensitive", key, name)
		}
	}
	return nil
}
