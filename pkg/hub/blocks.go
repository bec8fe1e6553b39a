package hub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"golang.org/x/crypto/blake2b"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/store"
)

func blockID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil || (len(id) != 16 && len(id) != 32) {
		return nil, fmt.Errorf("block id %q: %w", s, ErrInvalidName)
	}
	return id, nil
}

func (s *Server) getBlock(w http.ResponseWriter, r *http.Request) {
	id, err := blockID(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if p := r.PathValue("prefix"); p != "" && p != r.PathValue("id")[:2] {
		writeError(w, fmt.Errorf("block prefix %q: %w", p, store.ErrNotFound))
		return
	}
	if r.Method == http.MethodHead {
		ok, err := s.cfg.Blocks.Exists(r.Context(), id)
		if err != nil {
			writeError(w, err)
			return
		}
		if !ok {
			w.WriteHeader(http.StatusNotFound)
		}
		return
	}
	data, err := s.cfg.Blocks.Get(r.Context(), id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("block store", "block", r.PathValue("id"), "err", err)
		}
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// idMatches reports whether id is the hash of data, as the block codecs
// compute it (BLAKE2b-256 for rfs, SHA-256 for early rfs, BLAKE2b-128 for
// 0-flist).
func idMatches(id, data []byte) bool {
	if len(id) == 16 {
		h, _ := blake2b.New(16, nil)
		h.Write(data)
		return bytes.Equal(h.Sum(nil), id)
	}
	if sum := blake2b.Sum256(data); bytes.Equal(sum[:], id) {
		return true
	}
	sum := sha256.Sum256(data)
	return bytes.Equal(sum[:], id)
}

func (s *Server) putBlock(w http.ResponseWriter, r *http.Request) {
	id, err := blockID(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	user, err := s.authorize(r, "")
	if err != nil {
		writeError(w, err)
		return
	}
	var buf bytes.Buffer
	if err := readSigned(r, &buf, block.MaxStoredSize); err != nil {
		writeError(w, err)
		return
	}
	if buf.Len() == 0 || !idMatches(id, buf.Bytes()) {
		writeError(w, fmt.Errorf("block %x: id is not the hash of the data: %w", id, errBadBody))
		return
	}
	if err := s.cfg.Blocks.Set(r.Context(), id, buf.Bytes()); err != nil {
		s.log.Error("block store", "block", r.PathValue("id"), "user", user, "err", err)
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}
