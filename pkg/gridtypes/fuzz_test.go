package gridtypes

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and an
// accepted document must survive a JSON round trip unchanged, with the same
// hash (so signatures survive storage and delivery).
func FuzzDecode(f *testing.F) {
	for _, w := range sampleWorkloads() {
		r := signed(f, w)
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"volume","data":{"size":1,"type":"ssd"},"result":{"data":{"a":"<b>"},"state":"ok"}}`))
	f.Add([]byte(`{"type":"container","data":{"environment":{},"volumes":[]}}`))
	f.Add([]byte(`{"type":"vm","data":null}`))
	f.Add([]byte(`{"type":"volume","data":{"size":1,"type":"ssd"},"lifetime":86400,"reference":"7-1"}`))
	f.Add([]byte(`{"type":"bogus","data":{}}`))
	f.Add([]byte(`[1,2`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		_ = r.Validate()
		h1, err := r.Hash()
		if err != nil {
			t.Fatalf("decoded reservation has no hash: %v", err)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		r2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the reservation:\n%#v\n%#v", r, r2)
		}
		if h2, _ := r2.Hash(); h1 != h2 {
			t.Fatal("round trip changed the hash")
		}
	})
}
