package block

import (
	"math/rand/v2"
	"testing"
)

func benchChunk() []byte {
	p := make([]byte, ChunkSize)
	rand.NewChaCha8([32]byte{}).Read(p)
	return p
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range []Codec{RFS, Zero} {
		b.Run(c.Name(), func(b *testing.B) {
			p := benchChunk()
			for b.Loop() {
				if _, _, err := c.Encode(p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*ChunkSize/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []Codec{RFS, Zero} {
		b.Run(c.Name(), func(b *testing.B) {
			blk, data, err := c.Encode(benchChunk())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := c.Decode(blk, data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*ChunkSize/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
		})
	}
}
