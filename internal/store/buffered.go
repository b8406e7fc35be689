package store

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

// ErrCorrupted says that leveldb found a database's files damaged, for
// example by a machine that lost power while writing them.
var ErrCorrupted = errors.New("leveldb files are corrupted")

// tableWriteBuffer is the write buffer of each table file leveldb writes.
const tableWriteBuffer = 256 << 10

// openLevelDB opens a leveldb database at path whose table files are
// written through a buffer. goleveldb writes every block of a table with
// its own write(2); while a table is recovered or folded, compactions
// write tables all the time, and those calls were a fifth of the CPU. The
// journal and the manifest are written as before. The returned close
// function closes the database, then its files.
func openLevelDB(path string, o *opt.Options) (*leveldb.DB, func() error, error) {
	files, err := storage.OpenFile(path, o.GetReadOnly())
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open leveldb files: %w", err)
	}
	db, err := leveldb.Open(bufferedTables{files}, o)
	if err != nil {
		if lerrors.IsCorrupted(err) {
			err = fmt.Errorf("%w: %w", ErrCorrupted, err)
		}
		return nil, nil, errors.Join(fmt.Errorf("failed to open leveldb %s: %w", path, err), files.Close())
	}
	return db, files.Close, nil
}

// bufferedTables is a leveldb storage whose table files are buffered.
type bufferedTables struct{ storage.Storage }

func (s bufferedTables) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := s.Storage.Create(fd)
	if err != nil || fd.Type != storage.TypeTable {
		return w, err
	}
	return &bufferedWriter{Writer: w, buf: bufio.NewWriterSize(w, tableWriteBuffer)}, nil
}

// bufferedWriter flushes its buffer before it syncs or closes: leveldb
// reads a table only after closing it.
type bufferedWriter struct {
	storage.Writer
	buf *bufio.Writer
}

func (w *bufferedWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *bufferedWriter) Sync() error {
	if err := w.buf.Flush(); err != nil {
		return err
	}
	return w.Writer.Sync()
}

func (w *bufferedWriter) Close() error {
	return errors.Join(w.buf.Flush(), w.Writer.Close())
}
