package store

import "time"

// BuildStatus is where a build is in its life (docs/api.md §7).
type BuildStatus string

// Build statuses.
const (
	BuildQueued     BuildStatus = "queued"
	BuildRunning    BuildStatus = "running"
	BuildSucceeded  BuildStatus = "succeeded"
	BuildFailed     BuildStatus = "failed"
	BuildSuperseded BuildStatus = "superseded"
)

// MaxAttempts is how many leases a build gets before it is failed.
const MaxAttempts = 3

// Build is one build of a repository's default-branch head.
type Build struct {
	ID             int64
	RepoID         int64
	Repo           string // owner/name
	Branch         string
	Commit         string
	PreviousCommit string // last built commit (or the previous head); "" if none
	CommitCount    int    // commits in PreviousCommit..Commit
	Status         BuildStatus
	Attempt        int
	PushedBy       string
	QueuedAt       time.Time
	StartedAt      time.Time
	FinishedAt     time.Time
	Worker         string
	Message        string
	LogURL         string
	LeaseToken     string
	LeaseExpiresAt time.Time
	// CloneToken is the secret of the claim's clone token. Only ClaimBuild
	// sets it: the store keeps its SHA-256, never the secret.
	CloneToken string
}

// Valid reports whether st is a build status.
func (st BuildStatus) Valid() bool {
	switch st {
	case BuildQueued, BuildRunning, BuildSucceeded, BuildFailed, BuildSuperseded:
		return true
	}
	return false
}

// NewBuild asks for a build of a repository's default-branch head.
type NewBuild struct {
	RepoID   int64
	Branch   string
	Commit   string
	PushedBy string
	// PreviousCommit is the base of the build, as BuildBase returned it
	// for this repository; EnqueueBuild refuses the build (ErrConflict) when
	// the base has changed since (another build was queued, claimed or
	// finished meanwhile).
	PreviousCommit string
	// CommitCount is the number of commits in PreviousCommit..Commit (all
	// commits reachable from Commit when PreviousCommit is ""), computed by
	// the caller before EnqueueBuild, outside any transaction.
	CommitCount int
}
