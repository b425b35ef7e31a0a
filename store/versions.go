package store

import (
	"fmt"
	"time"
)

// Version is a published semantic version of a repository.
type Version struct {
	ID           int64
	RepoID       int64
	Major        int
	Minor        int
	Patch        int
	Commit       string
	BuildID      int64
	ReleaseNotes string
	PublishedBy  string
	PublishedAt  time.Time
}

// String is "MAJOR.MINOR.PATCH".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Bump kinds.
const (
	BumpMajor = "major"
	BumpMinor = "minor"
	BumpPatch = "patch"
)

// MaxReleaseNotes is the longest release notes Publish accepts.
const MaxReleaseNotes = 64 << 10

// NextVersion applies a bump to the latest version (0.0.0 when none).
func NextVersion(major, minor, patch int, bump string) (int, int, int, error) {
	switch bump {
	case BumpMajor:
		return major + 1, 0, 0, nil
	case BumpMinor:
		return major, minor + 1, 0, nil
	case BumpPatch:
		return major, minor, patch + 1, nil
	}
	return 0, 0, 0, Errorf(ErrInvalid, "bump must be \"major\", \"minor\" or \"patch\"")
}
