package manifest

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
)

// Decompressed returns a reader of an export's NDJSON: r itself, or,
// when r starts with the gzip magic bytes (an archive file, *.ndjson.gz),
// its decompressed content. Every gzip member is read.
func Decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil // short or plain: the NDJSON reader reports what it is
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("not a readable gzip file: %w", err)
	}
	return zr, nil
}
