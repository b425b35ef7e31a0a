// Package backup writes and reads gitserver's backup archive: a tar
// (gzip-compressed or not) holding, in this order,
//
//	manifest.json           format and schema versions, time, counts
//	files/<name>            data files: the secret key, SSH host keys
//	db/<table>.jsonl        every row of every table (store.Dumper), one
//	                        JSON object a line, tables in dependency order
//	repos/<id>.bundle       each repository with refs: `git bundle --all`
//	repos/<id>.empty        a repository without refs
//	repos/<id>.deleted      a repository deleted while the backup ran
//
// Create takes the database snapshot first (one read transaction), then
// bundles every repository of that snapshot, so that every commit a row
// names (a build's, a pinned version's) is in the archive; refs may be
// newer than the rows, which the restored server reconciles (builds owed
// are queued at start-up). docs/decisions.md "Backup and restore" explains
// the order.
//
// Restore never uses an entry's name as a path: names must match the
// grammar above exactly (a table of store.BackupTables, a decimal id, a
// data file name the caller allows), every entry must be a regular file,
// and each goes where the caller says; anything else refuses the archive.
// A row's value is typed in JSON: a number is an int64, a string a string,
// null NULL, and {"base64": "..."} bytes (sealed secrets stay sealed).
//
// Imports: gitserver/store
// Test imports: gitserver/store/sqlite, gitserver/store/storetest
package backup
