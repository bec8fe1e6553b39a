package revert

import (
	"slices"
	"testing"
)

func TestUnwindRunsInReverseOnce(t *testing.T) {
	var got []int
	var s Stack
	for i := range 3 {
		s.Push(func() { got = append(got, i) })
	}
	s.Unwind()
	s.Unwind()
	if want := []int{2, 1, 0}; !slices.Equal(got, want) {
		t.Fatalf("unwind order %v, want %v", got, want)
	}
}

func TestDoneDisarms(t *testing.T) {
	ran := false
	var s Stack
	s.Push(func() { ran = true })
	s.Done()
	s.Unwind()
	if ran {
		t.Fatal("undo ran after Done")
	}
}
