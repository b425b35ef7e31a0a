package postgres

import (
	"context"
	"fmt"
	"strconv"
)

// sealedColumn is a column whose values are sealed with Options.Sealer,
// each for the aad sealAAD(table, column, its row's idColumn).
type sealedColumn struct{ table, column, idColumn string }

// sealedColumns lists every column that holds sealed values: ResealAll
// (the key rotation) re-seals exactly these, so a sealed column missing
// here would stop opening once a rotation drops the previous key. The
// change (and migration) that adds a sealed column adds its entry here,
// e.g.
//
//	{table: "mirrors", column: "private_key", idColumn: "id"},
//
// and seals every value with sealAAD(table, column, id). The column is a
// BLOB; NULL or empty means no secret. A table that does not exist (yet)
// is skipped.
var sealedColumns = []sealedColumn{
	{table: "mirrors", column: "private_key", idColumn: "repo_id"},
	{table: "mirrors", column: "webhook_secret", idColumn: "repo_id"},
	{table: "scm_configs", column: "client_secret", idColumn: "id"},
	{table: "scm_configs", column: "access_token", idColumn: "id"},
	{table: "scm_connections", column: "access_token", idColumn: "id"},
	{table: "scm_connections", column: "refresh_token", idColumn: "id"},
	{table: "scm_oauth_states", column: "verifier", idColumn: "id"},
	{table: "oidc_links", column: "refresh_token", idColumn: "user_id"},
	{table: "oidc_states", column: "verifier", idColumn: "id"},
}

// sealAAD is the aad a value of table.column in row id is sealed for, e.g.
// "mirrors.private_key:42": a sealed value copied into another row or
// column does not open.
func sealAAD(table, column string, id int64) []byte {
	return []byte(table + "." + column + ":" + strconv.FormatInt(id, 10))
}

func quoteIdent(s string) string { return `"` + s + `"` }

// ResealAll implements store.Secrets over sealedColumns, in one write
// transaction.
func (s *DB) ResealAll(ctx context.Context, reseal func(sealed, aad []byte) ([]byte, error)) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *txw) error {
		n = 0
		for _, c := range sealedColumns {
			m, err := resealColumn(ctx, tx, c, reseal)
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

func resealColumn(ctx context.Context, tx *txw, c sealedColumn, reseal func(sealed, aad []byte) ([]byte, error)) (int, error) {
	var tables int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?`, c.table).Scan(&tables); err != nil {
		return 0, err
	}
	if tables == 0 {
		return 0, nil
	}
	t, col, id := quoteIdent(c.table), quoteIdent(c.column), quoteIdent(c.idColumn)
	rows, err := tx.QueryContext(ctx, `SELECT `+id+`, `+col+` FROM `+t+` WHERE `+col+` IS NOT NULL AND length(`+col+`) > 0 ORDER BY `+id)
	if err != nil {
		return 0, fmt.Errorf("%s.%s: %w", c.table, c.column, err)
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
			return 0, fmt.Errorf("%s.%s: %w", c.table, c.column, err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%s.%s: %w", c.table, c.column, err)
	}
	for _, r := range all {
		next, err := reseal(r.sealed, sealAAD(c.table, c.column, r.id))
		if err != nil {
			return 0, fmt.Errorf("%s.%s of row %d: %w", c.table, c.column, r.id, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE `+t+` SET `+col+` = ? WHERE `+id+` = ? AND `+col+` = ?`, next, r.id, r.sealed)
		if err != nil {
			return 0, fmt.Errorf("%s.%s of row %d: %w", c.table, c.column, r.id, err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return 0, errRetry
		}
	}
	return len(all), nil
}
