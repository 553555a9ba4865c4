// Package ctxio copies streams in a way that a cancelled context stops
// between reads, reusing buffers across copies.
package ctxio

import (
	"context"
	"io"
)

var bufs = make(chan []byte, 64)

// Copy copies r to w until EOF, an error or ctx is done. onBytes, if set,
// is told of every chunk written (progress).
func Copy(ctx context.Context, w io.Writer, r io.Reader, onBytes func(int64)) (int64, error) {
	var buf []byte
	select {
	case buf = <-bufs:
	default:
		buf = make([]byte, 256<<10)
	}
	defer func() {
		select {
		case bufs <- buf:
		default:
		}
	}()
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if onBytes != nil {
				onBytes(int64(m))
			}
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
