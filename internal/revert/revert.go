// Package revert is an undo stack for multi-step operations: each finished step
// pushes the function that undoes it; on failure the deferred Unwind runs them in
// reverse order, and on success Done disarms the stack so nothing is undone.
//
//	var undo revert.Stack
//	defer undo.Unwind()
//	if err := createA(); err != nil { return err }
//	undo.Push(func() { deleteA() })
//	...
//	undo.Done()
package revert

// Stack holds undo functions. The zero value is ready to use. It is not safe
// for concurrent use: one operation owns it.
type Stack struct {
	fns  []func()
	done bool
}

// Push adds fn, to be run by Unwind unless Done is called first.
func (s *Stack) Push(fn func()) { s.fns = append(s.fns, fn) }

// Done marks the operation as successful: a later Unwind does nothing.
func (s *Stack) Done() { s.done = true }

// Unwind runs the pushed functions in reverse order, unless Done was called.
// It runs them at most once.
func (s *Stack) Unwind() {
	if s.done {
		return
	}
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
	s.fns = nil
	s.done = true
}
