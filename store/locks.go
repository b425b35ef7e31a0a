package store

import "context"

// Locker is implemented by stores that several nodes share (store/postgres):
// a named lock held across nodes while one of them does work that must not
// run twice at once (a repository's maintenance, a mirror's sync). A lock
// is released by release, or when its holder dies (it lives on the
// holder's own database connection), so a crashed node leaves no lock
// behind. A store for one node (store/sqlite) does not implement it; its
// callers then need no lock.
type Locker interface {
	// TryLock takes the lock named key if no one holds it: ok is false
	// (and release nil) when another holder has it.
	TryLock(ctx context.Context, key string) (release func(), ok bool, err error)
}
