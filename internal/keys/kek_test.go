package keys

import (
	"strings"
	"testing"
)

func TestParseKEKs(t *testing.T) {
	good, err := NewKEKLine("k-2")
	if err != nil {
		t.Fatal(err)
	}
	older, _ := NewKEKLine("k-1")
	for _, test := range []struct {
		name, text, err string
		ids             []string
	}{
		{"one", good, "", []string{"k-2"}},
		{"rotated: the first wraps", "# comment\n\n" + good + older, "", []string{"k-2", "k-1"}},
		{"empty", "# nothing\n", "holds no key", nil},
		{"short key", "k AAAA\n", "not the base64 of 32 bytes", nil},
		{"bad id", strings.Replace(good, "k-2", "k/2", 1), "is not 1 to 64", nil},
		{"repeated id", good + good, "repeated", nil},
		{"three fields", "a b c\n", "got 3 fields", nil},
	} {
		t.Run(test.name, func(t *testing.T) {
			k, err := ParseKEKs([]byte(test.text))
			if test.err != "" {
				if err == nil || !strings.Contains(err.Error(), test.err) {
					t.Fatalf("error %v, want %q", err, test.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(k.IDs(), ","); got != strings.Join(test.ids, ",") || k.Primary().ID != test.ids[0] {
				t.Errorf("ids %s, primary %s; want %v", got, k.Primary().ID, test.ids)
			}
		})
	}
}

func TestSealOpenBindsAAD(t *testing.T) {
	aead, err := newAEAD(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := seal(aead, []byte("Ada"), []byte("a"))
	if p, err := open(aead, s, []byte("a")); err != nil || string(p) != "Ada" {
		t.Fatalf("open = %q, %v", p, err)
	}
	if _, err := open(aead, s, []byte("b")); err == nil {
		t.Error("a sealed value opened under another customer or field")
	}
	if string(seal(aead, []byte("Ada"), nil)) == string(seal(aead, []byte("Ada"), nil)) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
}
