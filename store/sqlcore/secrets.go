package sqlcore

import (
	"context"
	"fmt"
	"strconv"
)

// SealedColumn is a column whose values are sealed with the store's
// Sealer, each for the aad sealAAD(Table, Column, its row's IDColumn).
type SealedColumn struct{ Table, Column, IDColumn string }

// SealedColumns lists every column that holds sealed values: ResealAll
// (the key rotation) re-seals exactly these, so a sealed column missing
// here would stop opening once a rotation drops the previous key. The
// change (and migration) that adds a sealed column adds its entry here,
// e.g.
//
//	{Table: "mirrors", Column: "private_key", IDColumn: "id"},
//
// and seals every value with sealAAD(table, column, id). The column is a
// BLOB; NULL or empty means no secret. A table that does not exist (yet)
// is skipped. New copies it into Core.Sealed, which ResealAll walks.
var SealedColumns = []SealedColumn{
	{Table: "mirrors", Column: "private_key", IDColumn: "repo_id"},
	{Table: "mirrors", Column: "webhook_secret", IDColumn: "repo_id"},
	{Table: "scm_configs", Column: "client_secret", IDColumn: "id"},
	{Table: "scm_configs", Column: "access_token", IDColumn: "id"},
	{Table: "scm_connections", Column: "access_token", IDColumn: "id"},
	{Table: "scm_connections", Column: "refresh_token", IDColumn: "id"},
	{Table: "scm_oauth_states", Column: "verifier", IDColumn: "id"},
	{Table: "oidc_links", Column: "refresh_token", IDColumn: "user_id"},
	{Table: "oidc_states", Column: "verifier", IDColumn: "id"},
}

// sealAAD is the aad a value of table.column in row id is sealed for, e.g.
// "mirrors.private_key:42": a sealed value copied into another row or
// column does not open.
func sealAAD(table, column string, id int64) []byte {
	return []byte(table + "." + column + ":" + strconv.FormatInt(id, 10))
}

func quoteIdent(s string) string { return `"` + s + `"` }

// ResealAll implements store.Secrets over s.Sealed, in one write
// transaction.
func (s *Core) ResealAll(ctx context.Context, reseal func(sealed, aad []byte) ([]byte, error)) (int, error) {
	var n int
	err := s.tx(ctx, func(tx Q) error {
		n = 0
		for _, c := range s.Sealed {
			m, err := s.resealColumn(ctx, tx, c, reseal)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: re-seal: %w", err)
	}
	return n, nil
}

func (s *Core) resealColumn(ctx context.Context, tx Q, c SealedColumn, reseal func(sealed, aad []byte) ([]byte, error)) (int, error) {
	var tables int
	if err := tx.QueryRowContext(ctx, s.d.TableExists, c.Table).Scan(&tables); err != nil {
		return 0, err
	}
	if tables == 0 {
		return 0, nil
	}
	t, col, id := quoteIdent(c.Table), quoteIdent(c.Column), quoteIdent(c.IDColumn)
	rows, err := tx.QueryContext(ctx, `SELECT `+id+`, `+col+` FROM `+t+` WHERE `+col+` IS NOT NULL AND length(`+col+`) > 0 ORDER BY `+id)
	if err != nil {
		return 0, fmt.Errorf("%s.%s: %w", c.Table, c.Column, err)
	}
	type row struct {
		id     int64
		sealed []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.sealed); err != nil {
			rows.Close()
			return 0, fmt.Errorf("%s.%s: %w", c.Table, c.Column, err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%s.%s: %w", c.Table, c.Column, err)
	}
	for _, r := range all {
		next, err := reseal(r.sealed, sealAAD(c.Table, c.Column, r.id))
		if err != nil {
			return 0, fmt.Errorf("%s.%s of row %d: %w", c.Table, c.Column, r.id, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE `+t+` SET `+col+` = ? WHERE `+id+` = ? AND `+col+` = ?`, next, r.id, r.sealed)
		if err != nil {
			return 0, fmt.Errorf("%s.%s of row %d: %w", c.Table, c.Column, r.id, err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return 0, errRetry
		}
	}
	return len(all), nil
}
