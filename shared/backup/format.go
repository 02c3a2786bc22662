package backup

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The encrypted backup format, version 1:
//
//	header: magic "SVBACKUP" | version u8 | chunk size u32 | key id len u16 | key id
//	        | wrapped data key len u16 | wrapped data key | nonce prefix (8 bytes)
//	chunks: AES-256-GCM(chunk) || tag, every chunk ChunkSize bytes of plaintext
//	        except the last, which is shorter (possibly empty)
//
// Chunk i has nonce = prefix || u32(i) and AAD = SHA-256(header) || u64(i) ||
// final flag, so a chunk cannot be moved, dropped, replayed in another
// backup, or made to pass for the last one: truncation at a chunk boundary
// leaves no final chunk, truncation inside a chunk fails its tag.
const (
	magic         = "SVBACKUP"
	formatVersion = 1
	// ChunkSize is the plaintext size of every chunk but the last; memory
	// use of Encrypt and Decrypt is about one chunk.
	ChunkSize    = 1 << 20
	noncePrefix  = 8
	tagSize      = 16
	maxKeyID     = 2048
	maxWrapped   = 4096
	maxChunkSize = 16 << 20
)

var (
	// ErrNotBackup: the object does not start like a backup of this
	// format (a foreign file, or a format from the future).
	ErrNotBackup = errors.New("backup: not an smtp-vault backup")
	// ErrCorrupt: the backup failed authentication: it was changed,
	// truncated, reordered, or its checksum does not match its manifest.
	ErrCorrupt = errors.New("backup: damaged or tampered")
	// ErrWrongKey: the data key could not be unwrapped with the key
	// source given (another key, or a key file that was replaced).
	ErrWrongKey = errors.New("backup: the data key does not open with this key")
)

// Header is the clear part of an encrypted backup.
type Header struct {
	ChunkSize  int
	KeyID      string
	WrappedKey []byte
	prefix     [noncePrefix]byte
	raw        []byte // the header as written, hashed into every chunk's AAD
}

func (h *Header) marshal() ([]byte, error) {
	if len(h.KeyID) > maxKeyID || len(h.WrappedKey) > maxWrapped {
		return nil, fmt.Errorf("backup: key id or wrapped key too long")
	}
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteByte(formatVersion)
	binary.Write(&b, binary.BigEndian, uint32(h.ChunkSize))
	binary.Write(&b, binary.BigEndian, uint16(len(h.KeyID)))
	b.WriteString(h.KeyID)
	binary.Write(&b, binary.BigEndian, uint16(len(h.WrappedKey)))
	b.Write(h.WrappedKey)
	b.Write(h.prefix[:])
	return b.Bytes(), nil
}

// ReadHeader reads and checks the header at the start of r, leaving r at
// the first chunk.
func ReadHeader(r io.Reader) (*Header, error) {
	var raw bytes.Buffer
	tr := io.TeeReader(r, &raw)
	fixed := make([]byte, len(magic)+1+4+2)
	if _, err := io.ReadFull(tr, fixed); err != nil {
		return nil, fmt.Errorf("%w: too short for a header", ErrNotBackup)
	}
	if string(fixed[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: wrong magic", ErrNotBackup)
	}
	if v := fixed[len(magic)]; v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrNotBackup, v, formatVersion)
	}
	h := &Header{ChunkSize: int(binary.BigEndian.Uint32(fixed[len(magic)+1:]))}
	if h.ChunkSize < 1 || h.ChunkSize > maxChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d", ErrNotBackup, h.ChunkSize)
	}
	n := int(binary.BigEndian.Uint16(fixed[len(magic)+5:]))
	if n > maxKeyID {
		return nil, fmt.Errorf("%w: key id too long", ErrNotBackup)
	}
	id := make([]byte, n+2)
	if _, err := io.ReadFull(tr, id); err != nil {
		return nil, fmt.Errorf("%w: header truncated", ErrCorrupt)
	}
	h.KeyID = string(id[:n])
	n = int(binary.BigEndian.Uint16(id[n:]))
	if n > maxWrapped {
		return nil, fmt.Errorf("%w: wrapped key too long", ErrNotBackup)
	}
	rest := make([]byte, n+noncePrefix)
	if _, err := io.ReadFull(tr, rest); err != nil {
		return nil, fmt.Errorf("%w: header truncated", ErrCorrupt)
	}
	h.WrappedKey = rest[:n]
	copy(h.prefix[:], rest[n:])
	h.raw = raw.Bytes()
	return h, nil
}

// chunker holds what every chunk's nonce and AAD are built from.
type chunker struct {
	aead       cipher.AEAD
	prefix     [noncePrefix]byte
	headerHash [sha256.Size]byte
	nonce      [12]byte
	aad        [sha256.Size + 8 + 1]byte
}

func newChunker(key []byte, h *Header) (*chunker, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("backup: data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("backup: data key: %w", err)
	}
	c := &chunker{aead: aead, prefix: h.prefix, headerHash: sha256.Sum256(h.raw)}
	copy(c.nonce[:], c.prefix[:])
	copy(c.aad[:], c.headerHash[:])
	return c, nil
}

func (c *chunker) set(index uint64, final bool) error {
	if index > 0xFFFFFFFF {
		return fmt.Errorf("backup: more than 2^32 chunks")
	}
	binary.BigEndian.PutUint32(c.nonce[noncePrefix:], uint32(index))
	binary.BigEndian.PutUint64(c.aad[sha256.Size:], index)
	c.aad[len(c.aad)-1] = 0
	if final {
		c.aad[len(c.aad)-1] = 1
	}
	return nil
}

// Encrypt writes the header and then r's content encrypted under key, in
// chunks. keyID and wrapped say how to get key back; they are stored in
// the clear. It returns the number of plaintext bytes read.
func Encrypt(w io.Writer, r io.Reader, key []byte, keyID string, wrapped []byte) (int64, error) {
	return encrypt(w, r, key, keyID, wrapped, ChunkSize)
}

// encrypt is Encrypt with a chunk size of its own: the fuzz target's
// small chunks reach multi-chunk backups in a few bytes.
func encrypt(w io.Writer, r io.Reader, key []byte, keyID string, wrapped []byte, chunkSize int) (int64, error) {
	h := &Header{ChunkSize: chunkSize, KeyID: keyID, WrappedKey: wrapped}
	if _, err := rand.Read(h.prefix[:]); err != nil {
		return 0, fmt.Errorf("backup: random nonce prefix: %w", err)
	}
	raw, err := h.marshal()
	if err != nil {
		return 0, err
	}
	h.raw = raw
	c, err := newChunker(key, h)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(raw); err != nil {
		return 0, fmt.Errorf("backup: write header: %w", err)
	}
	// A full chunk is never the last one: input that ends on a chunk
	// boundary gets an empty final chunk, so the reader never guesses.
	buf := make([]byte, h.ChunkSize, h.ChunkSize+tagSize)
	var total int64
	for index := uint64(0); ; index++ {
		n, err := io.ReadFull(r, buf)
		final := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			final = true
		case err != nil:
			return total, fmt.Errorf("backup: read snapshot: %w", err)
		}
		total += int64(n)
		if err := c.set(index, final); err != nil {
			return total, err
		}
		out := c.aead.Seal(buf[:0], c.nonce[:], buf[:n], c.aad[:])
		if _, err := w.Write(out); err != nil {
			return total, fmt.Errorf("backup: write chunk %d: %w", index, err)
		}
		if final {
			return total, nil
		}
	}
}

// Decrypt authenticates and decrypts the chunks that follow h in r,
// writing each chunk's plaintext to w only once its tag is verified. A
// backup that ends before its final chunk, or has data after it, is
// ErrCorrupt. Because w receives authenticated chunks before the end is
// reached, callers that must not act on a partial backup verify it first
// (Decrypt to io.Discard) and decrypt again to use it.
func Decrypt(w io.Writer, r io.Reader, h *Header, key []byte) (int64, error) {
	c, err := newChunker(key, h)
	if err != nil {
		return 0, err
	}
	size := h.ChunkSize + tagSize
	buf := make([]byte, size)
	var total int64
	for index := uint64(0); ; index++ {
		// A full-size chunk is never the last (see Encrypt); a short one
		// is, and then r is at its end.
		n, err := io.ReadFull(r, buf)
		final := false
		switch {
		case err == io.EOF:
			return total, fmt.Errorf("%w: truncated: no final chunk after %d chunks", ErrCorrupt, index)
		case err == io.ErrUnexpectedEOF:
			final = true
		case err != nil:
			return total, fmt.Errorf("backup: read chunk %d: %w", index, err)
		}
		if n < tagSize {
			return total, fmt.Errorf("%w: truncated inside chunk %d", ErrCorrupt, index)
		}
		if err := c.set(index, final); err != nil {
			return total, err
		}
		plain, err := c.aead.Open(buf[:0], c.nonce[:], buf[:n], c.aad[:])
		if err != nil {
			return total, fmt.Errorf("%w: chunk %d failed authentication (changed, truncated or moved)", ErrCorrupt, index)
		}
		if _, err := w.Write(plain); err != nil {
			return total, fmt.Errorf("backup: write chunk %d: %w", index, err)
		}
		total += int64(len(plain))
		if final {
			return total, nil
		}
	}
}
