package engine

import "errors"

// Error is an engine error that 0-db clients see: Reply is the exact error
// line the original 0-db sends for it (without the leading '-').
type Error struct {
	text  string
	reply string
}

// Error implements error.
func (e *Error) Error() string { return e.text }

// Reply returns the error line of the 0-db protocol for e.
func (e *Error) Reply() string { return e.reply }

func newError(text, reply string) *Error { return &Error{text: text, reply: reply} }

// Errors returned by the engine. Match them with errors.Is; the server sends
// their Reply text.
var (
	ErrNoSpace        = newError("no space left on this namespace", "No space left on this namespace")
	ErrReadOnly       = newError("namespace is in read-only mode", "Namespace is in read-only mode")
	ErrWorm           = newError("namespace is protected by worm mode", "Namespace is protected by worm mode")
	ErrWormDelete     = newError("cannot delete a key when namespace is in worm mode", "Cannot delete a key when namespace is in worm mode")
	ErrKeyTooLarge    = newError("key too large", "Key too large")
	ErrKeyNeeded      = newError("key needed", "Invalid argument, key needed")
	ErrOnlyUpdate     = newError("invalid key, only update authorized", "Invalid key, only update authorized")
	ErrKeyNotFound    = newError("key not found", "Key not found")
	ErrNoMoreData     = newError("no more data", "No more data")
	ErrInvalidCursor  = newError("invalid key format", "Invalid key format")
	ErrNoMoreHistory  = newError("no more history", "No more history")
	ErrInvalidArgs    = newError("invalid arguments", "Invalid arguments")
	ErrHistoryIndex   = newError("invalid history reference", "Invalid arguments (index query)")
	ErrHistoryKey     = newError("history reference of another key", "Invalid arguments (invalid key)")
	ErrLocked         = newError("namespace is temporarily locked", "Namespace is temporarily locked (read-only)")
	ErrFrozen         = newError("namespace is temporarily frozen", "Namespace is temporarily frozen (read-write disabled)")
	ErrNotFound       = newError("namespace not found", "Namespace not found")
	ErrExists         = newError("namespace already exists", "This namespace is not available")
	ErrBadName        = newError("namespace name not allowed", "This name is not allowed")
	ErrNameTooLong    = newError("namespace name too long", "Namespace too long")
	ErrDefaultDelete  = newError("cannot remove the default namespace", "Cannot remove default namespace")
	ErrDefaultUpdate  = newError("cannot update the default namespace", "Cannot update default namespace")
	ErrBadProperty    = newError("invalid namespace property", "Invalid property")
	ErrBadModeValue   = newError("invalid mode", "Invalid property value (expected: user, seq)")
	ErrSingleMode     = newError("server runs a single mode", "This server instance is configured to use a single runtime mode")
	ErrNotFresh       = newError("namespace is not empty", "Cannot change mode of used namespace")
	ErrNoKeysMatch    = newError("no keys match", "No keys match")
	ErrModeNoSupport  = newError("index mode does not support this", "Index running mode doesn't support this feature")
	ErrRawNotFound    = newError("no data entry at this position", "Invalid offset")
	ErrClosed         = newError("namespace closed", "Your active namespace is not available anymore (probably removed).")
	ErrWriteData      = newError("data write failed", "Cannot write data right now")
	ErrWriteIndex     = newError("index write failed", "Cannot write index right now")
	ErrReadData       = newError("data read failed", "Internal Error")
	ErrPayloadTooLong = newError("payload too large", "Payload too large")
)

// Start-up and file errors (not protocol replies).
var (
	// ErrCorrupt means a file holds bytes that are not a valid 0-db structure.
	ErrCorrupt = errors.New("corrupt file")
	// ErrUnsupported means a file is of another 0-db version (e.g. v1).
	ErrUnsupported = errors.New("unsupported file version")
	// ErrShort means a buffer ends inside a structure.
	ErrShort = errors.New("truncated structure")
	// ErrModeMismatch means a namespace was created in another mode than the
	// server runs in.
	ErrModeMismatch = errors.New("index created in another mode than running mode")
)
