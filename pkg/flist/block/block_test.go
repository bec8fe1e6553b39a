package block

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, c := range []Codec{RFS, Zero} {
		for _, plain := range [][]byte{[]byte("x"), bytes.Repeat([]byte("abc"), 1000), benchChunk()} {
			b, data, err := c.Encode(plain)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.ID) != c.IDLen() || len(b.Key) != c.IDLen() {
				t.Fatalf("%s: id %d key %d bytes", c.Name(), len(b.ID), len(b.Key))
			}
			got, err := c.Decode(b, data)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s: decode: %v", c.Name(), err)
			}
			if !Verify(c, b, plain) || Verify(c, b, append(plain, 0)) {
				t.Fatalf("%s: verify", c.Name())
			}
			// identical chunks give identical blocks: stores dedup
			b2, data2, _ := c.Encode(plain)
			if !bytes.Equal(b.ID, b2.ID) || !bytes.Equal(data, data2) {
				t.Fatalf("%s: encoding is not deterministic", c.Name())
			}
		}
	}
}

func TestDecodeRefusesBadBlocks(t *testing.T) {
	for _, c := range []Codec{RFS, Zero} {
		plain := bytes.Repeat([]byte("content "), 4000)
		b, data, _ := c.Encode(plain)
		flipped := bytes.Clone(data)
		flipped[len(flipped)/3] ^= 0x10
		wrongKey := Block{ID: b.ID, Key: bytes.Repeat([]byte{1}, len(b.Key))}
		other, otherData, _ := c.Encode([]byte("other content"))
		for name, tc := range map[string]struct {
			b    Block
			data []byte
		}{
			"flipped":   {b, flipped},
			"wrong key": {wrongKey, data},
			"other":     {b, otherData},
			"truncated": {b, data[:len(data)-5]},
			"empty":     {other, nil},
		} {
			if _, err := c.Decode(tc.b, tc.data); !errors.Is(err, ErrCorrupt) && !(name == "empty" && err != nil) {
				t.Errorf("%s %s: %v, want ErrCorrupt", c.Name(), name, err)
			}
		}
		if _, err := c.Decode(Block{ID: []byte{1}, Key: b.Key}, data); !errors.Is(err, ErrInvalidBlock) {
			t.Errorf("%s short id: %v", c.Name(), err)
		}
	}
}

// TestXXTEAKnownAnswer checks the cipher against the published example of
// the xxtea libraries (xxtea-c, xxtea-go) that libflist and 0-fs use.
func TestXXTEAKnownAnswer(t *testing.T) {
	got := base64.StdEncoding.EncodeToString(xxteaEncrypt([]byte("Hello World! 你好，中国！"), []byte("1234567890")))
	if got != "QncB1C0rHQoZ1eRiPM4dsZtRi9pNrp7sqvX76cFXvrrIHXL6" {
		t.Fatalf("xxtea: %s", got)
	}
	plain, err := xxteaDecrypt(xxteaEncrypt([]byte("Hello"), []byte("1234567890")), []byte("1234567890"))
	if err != nil || string(plain) != "Hello" {
		t.Fatalf("decrypt: %q %v", plain, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []Codec{RFS, Zero} {
		_, data, _ := c.Encode([]byte("seed block"))
		f.Add(data, c.IDLen() == 16)
	}
	f.Fuzz(func(t *testing.T, data []byte, zero bool) {
		c := RFS
		if zero {
			c = Zero
		}
		b, _, _ := c.Encode([]byte("seed block"))
		plain, err := c.Decode(b, data)
		if err == nil && string(plain) != "seed block" {
			t.Fatalf("accepted content that does not match the key: %q", plain)
		}
	})
}
