package sqlcore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gitserver/store"
)

// The parts of store.Dumper both engines share: reading a table's rows
// into store.Rows, and checking a dump's rows before they are inserted.
// What differs (the snapshot, sequences, constraint errors, prepared
// statements) stays with each engine's backup.go.

// QuoteName quotes a table or column name for SQL (both engines accept
// double quotes).
func QuoteName(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// DumpTable calls fn with every row of table, in orderBy order, as a
// store.Row of int64, string, []byte or nil values. Table names come from
// store.BackupTables, never from input.
func DumpTable(ctx context.Context, q Q, table, orderBy string, fn func(string, store.Row) error) error {
	rows, err := q.QueryContext(ctx, `SELECT * FROM `+QuoteName(table)+` ORDER BY `+orderBy)
	if err != nil {
		return fmt.Errorf("store: dump %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("store: dump %s: %w", table, err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("store: dump %s: %w", table, err)
		}
		row := make(store.Row, len(cols))
		for i, c := range cols {
			switch v := vals[i].(type) {
			case nil, int64, string:
				row[c] = v
			case []byte:
				row[c] = slices.Clone(v)
			default:
				return fmt.Errorf("store: dump %s: column %s holds a %T", table, c, v)
			}
		}
		if err := fn(table, row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: dump %s: %w", table, err)
	}
	return nil
}

// SequenceRow checks a row of store.SequencesTable and returns the table
// it names and that table's last issued id.
func SequenceRow(row store.Row) (table string, last int64, err error) {
	name, ok1 := row["table_name"].(string)
	last, ok2 := row["last_id"].(int64)
	if !ok1 || !ok2 || len(row) != 2 || !slices.Contains(store.BackupTables, name) {
		return "", 0, store.Errorf(store.ErrInvalid, "the dump holds a bad %s row", store.SequencesTable)
	}
	return name, last, nil
}

// InsertRow checks a dump's row of table against cols (the table's
// columns) and returns the INSERT statement for it, with ? placeholders,
// and its arguments (columns in sorted order).
func InsertRow(table string, cols map[string]bool, row store.Row) (query string, args []any, err error) {
	if len(row) == 0 {
		return "", nil, store.Errorf(store.ErrInvalid, "the dump holds an empty row of %s", table)
	}
	names := make([]string, 0, len(row))
	for c, v := range row {
		if !cols[c] {
			return "", nil, store.Errorf(store.ErrInvalid, "the dump holds an unknown column %q of %s", store.Truncate(c, 64), table)
		}
		switch v.(type) {
		case nil, int64, string, []byte:
		default:
			return "", nil, store.Errorf(store.ErrInvalid, "the dump holds a value of type %T in %s.%s", v, table, c)
		}
		names = append(names, c)
	}
	sort.Strings(names)
	quoted := make([]string, len(names))
	args = make([]any, len(names))
	for i, c := range names {
		quoted[i] = QuoteName(c)
		args[i] = row[c]
	}
	query = `INSERT INTO ` + QuoteName(table) + ` (` + strings.Join(quoted, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(names)-1) + `)`
	return query, args, nil
}
