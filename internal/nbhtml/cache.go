package nbhtml

import (
	"context"
	"path/filepath"

	"millrace/internal/atomicfile"
	"millrace/internal/beneath"
	"millrace/internal/filemode"
)

// CacheName is a run's cached page, in the run's own directory beside its
// default output notebook (output.ipynb): never in a folder of the
// user's, where a custom output notebook may be.
const CacheName = "output.html"

// Cached returns the page of notebook from dir/CacheName when that page
// was rendered from the same bytes (Key), else renders it and stores it
// there, private (filemode.File) and whole (atomicfile: a rename, which
// replaces a symlink put there rather than following it). A run still
// executing is cached too: its page is keyed by the notebook as it was,
// so the next cell's save makes it stale. The cache is read beneath dir,
// so a link swapped in that leads out of it is not followed. title is not
// part of the key: a run's title does not change.
//
// A page that cannot be stored is still returned: a reader whose data dir
// is read-only (a shared volume) serves pages, rendering each time.
func (r Renderer) Cached(ctx context.Context, notebook []byte, title, dir string) (page []byte, fromCache bool, err error) {
	// beneath works on absolute paths only; a relative data dir would
	// make every read a miss.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	path := filepath.Join(dir, CacheName)
	key := Key(notebook)
	if b, err := beneath.ReadFile(dir, path, r.maxBytes()); err == nil && KeyOf(b) == key {
		return b, true, nil
	}
	page, err = r.Render(ctx, notebook, title)
	if err != nil {
		return nil, false, err
	}
	_ = atomicfile.Write(path, page, filemode.File)
	return page, false, nil
}

func (r Renderer) maxBytes() int64 {
	if r.MaxBytes > 0 {
		return r.MaxBytes
	}
	return DefaultMaxBytes
}
