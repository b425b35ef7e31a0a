package store

import (
	"fmt"
	"time"
)

// Visibility says who may read a repository (docs/api.md §4).
type Visibility string

// Visibilities.
const (
	Public     Visibility = "public"
	Restricted Visibility = "restricted"
)

// Valid reports whether v is a known visibility.
func (v Visibility) Valid() bool { return v == Public || v == Restricted }

// DefaultBranch is used when a repository is created without one.
const DefaultBranch = "master"

// Repo is a hosted repository. Its directory on disk is derived from ID
// only (see gitserver.Repos), never from user-supplied names.
type Repo struct {
	ID            int64
	OwnerID       int64
	Owner         string // owner's account name, as stored
	OwnerKind     AccountKind
	Name          string
	Visibility    Visibility
	DefaultBranch string
	CreatedAt     time.Time
}

// FullName is "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// NewRepo describes a repository to create.
type NewRepo struct {
	OwnerID       int64
	Name          string
	Visibility    Visibility
	DefaultBranch string
}

// Normalize validates nr (ErrInvalid) and fills in the default branch.
func (nr *NewRepo) Normalize() error {
	if err := CheckName("repository", nr.Name); err != nil {
		return err
	}
	if !nr.Visibility.Valid() {
		return fmt.Errorf("%w: visibility must be \"public\" or \"restricted\"", ErrInvalid)
	}
	if nr.DefaultBranch == "" {
		nr.DefaultBranch = DefaultBranch
	}
	if p := BranchNameProblem(nr.DefaultBranch); p != "" {
		return Errorf(ErrInvalid, "default_branch %q is not a valid branch name: %s", Truncate(nr.DefaultBranch, 100), p)
	}
	return nil
}

// RepoUpdate is a change to a repository's settings; nil fields are left
// as they are.
type RepoUpdate struct {
	Visibility    *Visibility
	DefaultBranch *string
}

// Check validates u (ErrInvalid).
func (u RepoUpdate) Check() error {
	if u.Visibility != nil && !u.Visibility.Valid() {
		return fmt.Errorf("%w: visibility must be \"public\" or \"restricted\"", ErrInvalid)
	}
	if u.DefaultBranch != nil {
		if p := BranchNameProblem(*u.DefaultBranch); p != "" {
			return Errorf(ErrInvalid, "default_branch %q is not a valid branch name: %s", Truncate(*u.DefaultBranch, 100), p)
		}
	}
	return nil
}
