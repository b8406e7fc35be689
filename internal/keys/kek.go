// Package keys holds the data keys that seal customers' personal data
// (crypto-shredding): one AES-256-GCM key per customer, wrapped by the
// operator's key-encryption key (KEK) and kept in the compacted keys topic
// (kafka.Topics.Keys), read into an in-process Keyring.
//
// The keyring seals an event's personal fields for the writers (the HTTP
// API, eventfold produce), authenticates sealed values for the processor,
// and opens them for the readers. When a customer is erased, the processor
// writes tombstones of its keys: from then on every sealed copy of its
// personal data, in the log, the table, the stores, the dead letters and
// their backups, is unreadable.
//
// It must not decide anything of the fold: the processor asks it whether a
// sealed value is authentic, nothing else.
package keys

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KEK is one key-encryption key of the KEK file.
type KEK struct {
	ID   string
	aead cipher.AEAD
}

// KEKs are the key-encryption keys of the KEK file: the first wraps new
// data keys, every one unwraps. Rotating the KEK is putting a new one
// first and keeping the old ones below it as long as keys wrapped by them
// exist.
type KEKs struct {
	keys []KEK
}

// Primary is the KEK that wraps new data keys.
func (k *KEKs) Primary() KEK { return k.keys[0] }

// byID finds the KEK with the given id.
func (k *KEKs) byID(id string) (KEK, bool) {
	for _, kek := range k.keys {
		if kek.ID == id {
			return kek, true
		}
	}
	return KEK{}, false
}

// IDs lists the KEK ids, the primary first.
func (k *KEKs) IDs() []string {
	ids := make([]string, len(k.keys))
	for i, kek := range k.keys {
		ids[i] = kek.ID
	}
	return ids
}

// ParseKEKs reads a KEK file: one KEK per line, "<id> <base64 of 32
// random bytes>", the id 1 to 64 letters, digits, '.', '_' or '-'. Blank
// lines and lines starting with '#' are skipped.
func ParseKEKs(text []byte) (*KEKs, error) {
	var out KEKs
	sc := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<id> <base64 key>\", got %d fields", line, len(fields))
		}
		id, enc := fields[0], fields[1]
		if !validKEKID(id) {
			return nil, fmt.Errorf("line %d: KEK id %q is not 1 to 64 letters, digits, '.', '_' or '-'", line, id)
		}
		if _, dup := out.byID(id); dup {
			return nil, fmt.Errorf("line %d: KEK id %q repeated", line, id)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("line %d: KEK %q is not the base64 of 32 bytes", line, id)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, err
		}
		out.keys = append(out.keys, KEK{ID: id, aead: aead})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read KEK file: %w", err)
	}
	if len(out.keys) == 0 {
		return nil, errors.New("the KEK file holds no key")
	}
	return &out, nil
}

// LoadKEKs reads the KEK file at path.
func LoadKEKs(path string) (*KEKs, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read KEK file: %w", err)
	}
	keks, err := ParseKEKs(text)
	if err != nil {
		return nil, fmt.Errorf("failed to parse KEK file %s: %w", filepath.Base(path), err)
	}
	return keks, nil
}

// NewKEKLine returns a line of a KEK file holding a new random KEK.
func NewKEKLine(id string) (string, error) {
	if !validKEKID(id) {
		return "", fmt.Errorf("KEK id %q is not 1 to 64 letters, digits, '.', '_' or '-'", id)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("failed to generate KEK: %w", err)
	}
	return id + " " + base64.StdEncoding.EncodeToString(raw) + "\n", nil
}

// LoadOrCreateKEKs reads the KEK file at path, first writing one with a
// new random KEK (mode 0600) if there is none. It reports whether it
// created the file. The embedded quick start uses it: a KEK kept beside
// the data it protects protects nothing against a copy of that directory.
func LoadOrCreateKEKs(path string) (*KEKs, bool, error) {
	if _, err := os.Stat(path); err == nil {
		keks, err := LoadKEKs(path)
		return keks, false, err
	}
	line, err := NewKEKLine("generated-1")
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("failed to create KEK directory: %w", err)
	}
	text := "# eventfold key-encryption keys: \"<id> <base64 of 32 bytes>\"; the first wraps, all unwrap\n" + line
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, false, fmt.Errorf("failed to write KEK file: %w", err)
	}
	keks, err := LoadKEKs(path)
	return keks, true, err
}

func validKEKID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("failed to create cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("failed to create GCM: %w", err)
	}
	return aead, nil
}

// seal encrypts with a random nonce, which it puts in front.
func seal(aead cipher.AEAD, plaintext, aad []byte) []byte {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	// Since Go 1.24, crypto/rand.Read never returns an error: it fills
	// the slice or crashes the program.
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, aad)
}

func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, sealed[:n], sealed[n:], aad)
}
