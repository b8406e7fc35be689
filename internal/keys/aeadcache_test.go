package keys

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func randomKey(t testing.TB) []byte {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return raw
}

func TestAEADCacheStaysBoundedAndOpensWhatItSealed(t *testing.T) {
	c := newAEADCache()
	first := randomKey(t)
	sealed := func(raw []byte) []byte {
		aead, err := newAEAD(raw)
		if err != nil {
			t.Fatal(err)
		}
		return seal(aead, []byte("Ada Lovelace"), []byte("aad"))
	}
	blob := sealed(first)
	for range aeadCacheSize + 100 {
		if _, err := c.get(randomKey(t)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.byKey); n > aeadCacheSize {
		t.Fatalf("cache holds %d ciphers, bound %d", n, aeadCacheSize)
	}
	// first was evicted long ago: set up again, it still opens its value.
	aead, err := c.get(first)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := open(aead, blob, []byte("aad"))
	if err != nil || !bytes.Equal(plain, []byte("Ada Lovelace")) {
		t.Fatalf("opened %q, %v", plain, err)
	}
	c.forget(first)
	if _, ok := c.byKey[string(first)]; ok {
		t.Fatal("a forgotten key's cipher is still cached")
	}
}

// BenchmarkOpenValue compares opening a short sealed value with a cipher
// set up for it against one taken from the cache.
func BenchmarkOpenValue(b *testing.B) {
	raw := randomKey(b)
	aead, _ := newAEAD(raw)
	blob := seal(aead, []byte("customer1234@example.com"), []byte("aad"))
	b.Run("new-cipher", func(b *testing.B) {
		for b.Loop() {
			a, _ := newAEAD(raw)
			if _, err := open(a, blob, []byte("aad")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-cipher", func(b *testing.B) {
		c := newAEADCache()
		for b.Loop() {
			a, _ := c.get(raw)
			if _, err := open(a, blob, []byte("aad")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
