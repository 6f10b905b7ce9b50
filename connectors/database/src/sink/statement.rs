//! The SQL text of one group: `INSERT` (and the upsert clause of each
//! dialect), PostgreSQL's bulk load, `UPDATE` and `DELETE`.

use tributary_sdk::sql::{CopyLoad, Dialect, Value};

use super::Prepared;
use crate::dialect::{ColumnInfo, Kind};

/// SQL text for one group's table and columns.
pub(super) struct Statement<'a> {
    pub(super) dialect: Dialect,
    pub(super) table: &'a str,
    pub(super) columns: &'a [ColumnInfo],
    /// Positions of the key columns in `columns`.
    pub(super) key: Vec<usize>,
}

impl Statement<'_> {
    pub(super) fn quote(&self, name: &str) -> String {
        self.dialect.quote(name)
    }

    /// The `n`th placeholder (1-based) for a value of `column`; PostgreSQL
    /// gets an explicit cast for types it will not convert text to by
    /// itself (uuid, enums).
    pub(super) fn param(&self, n: usize, column: &ColumnInfo) -> String {
        let p = self.dialect.placeholder(n);
        if self.dialect == Dialect::Postgres && column.kind == Kind::Other {
            format!("{p}::{}", self.quote(&column.type_name))
        } else {
            p
        }
    }

    pub(super) fn column_list(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| self.quote(&c.name)).collect();
        names.join(", ")
    }

    pub(super) fn non_key(&self) -> impl Iterator<Item = &ColumnInfo> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.key.contains(i))
            .map(|(_, c)| c)
    }

    pub(super) fn key_columns(&self) -> impl Iterator<Item = &ColumnInfo> {
        self.key.iter().map(|&i| &self.columns[i])
    }

    /// `INSERT` of `rows` rows, as an upsert on the key when `upsert`.
    pub(super) fn insert(&self, rows: usize, upsert: bool) -> String {
        let width = self.columns.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.quote(self.table),
            self.column_list()
        );
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            let params: Vec<String> = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| self.param(r * width + i + 1, c))
                .collect();
            sql.push('(');
            sql.push_str(&params.join(", "));
            sql.push(')');
        }
        if upsert {
            sql.push_str(&self.on_conflict());
        }
        sql
    }

    /// A PostgreSQL bulk load of this table's columns, without its rows:
    /// `COPY` into the table, or for an upsert into a temporary table
    /// (dropped at commit) that then goes in with `ON CONFLICT`.
    pub(super) fn copy_load(&self, upsert: bool) -> CopyLoad {
        let table = self.quote(self.table);
        let columns = self.column_list();
        if !upsert {
            return CopyLoad {
                before: Vec::new(),
                copy: format!("COPY {table} ({columns}) FROM STDIN"),
                after: Vec::new(),
            };
        }
        let stage = "pg_temp.\"tributary_stage\"";
        CopyLoad {
            before: vec![format!(
                "CREATE TEMPORARY TABLE \"tributary_stage\" ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"
            )],
            copy: format!("COPY {stage} ({columns}) FROM STDIN"),
            after: vec![format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}{}",
                self.on_conflict()
            )],
        }
    }

    /// The upsert clause of this dialect.
    pub(super) fn on_conflict(&self) -> String {
        let rest: Vec<String> = self.non_key().map(|c| self.quote(&c.name)).collect();
        let key: Vec<String> = self.key_columns().map(|c| self.quote(&c.name)).collect();
        match self.dialect {
            Dialect::Mysql => {
                let set: Vec<String> = if rest.is_empty() {
                    vec![format!("{0} = {0}", key[0])]
                } else {
                    rest.iter().map(|c| format!("{c} = VALUES({c})")).collect()
                };
                format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
            }
            Dialect::Postgres | Dialect::Sqlite => {
                if rest.is_empty() {
                    return format!(" ON CONFLICT ({}) DO NOTHING", key.join(", "));
                }
                let set: Vec<String> = rest.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    key.join(", "),
                    set.join(", ")
                )
            }
        }
    }

    /// `key1 = p AND key2 = p`, numbering placeholders from `first`.
    pub(super) fn where_key(&self, first: usize) -> String {
        let conds: Vec<String> = self
            .key_columns()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", self.quote(&c.name), self.param(first + i, c)))
            .collect();
        conds.join(" AND ")
    }

    /// `UPDATE … SET <non-key columns> WHERE <key>`.
    pub(super) fn update(&self) -> String {
        let set: Vec<String> = self
            .non_key()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", self.quote(&c.name), self.param(i + 1, c)))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {}",
            self.quote(self.table),
            set.join(", "),
            self.where_key(set.len() + 1)
        )
    }

    /// `DELETE … WHERE <key>`.
    pub(super) fn delete(&self) -> String {
        format!(
            "DELETE FROM {} WHERE {}",
            self.quote(self.table),
            self.where_key(1)
        )
    }

    /// The parameters of `update`: non-key values, then key values.
    pub(super) fn update_params(&self, p: &Prepared) -> Vec<Value> {
        let mut out: Vec<Value> = (0..self.columns.len())
            .filter(|i| !self.key.contains(i))
            .map(|i| p.values[i].clone())
            .collect();
        out.extend(self.key_params(p));
        out
    }

    /// The key values of a row.
    pub(super) fn key_params(&self, p: &Prepared) -> Vec<Value> {
        self.key.iter().map(|&i| p.values[i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, kind: Kind, type_name: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            type_name: type_name.into(),
            kind,
        }
    }

    #[test]
    fn statements_in_each_dialect() {
        let columns = [
            column("id", Kind::Int, "int8"),
            column("tag", Kind::Other, "uuid"),
            column("n", Kind::Int, "int4"),
        ];
        let statement = |dialect, columns| Statement {
            dialect,
            table: "t",
            columns,
            key: vec![0],
        };
        let pg = statement(Dialect::Postgres, &columns[..]);
        assert_eq!(
            pg.insert(2, true),
            r#"INSERT INTO "t" ("id", "tag", "n") VALUES ($1, $2::"uuid", $3), ($4, $5::"uuid", $6) ON CONFLICT ("id") DO UPDATE SET "tag" = EXCLUDED."tag", "n" = EXCLUDED."n""#
        );
        assert_eq!(
            pg.update(),
            r#"UPDATE "t" SET "tag" = $1::"uuid", "n" = $2 WHERE "id" = $3"#
        );
        assert_eq!(pg.delete(), r#"DELETE FROM "t" WHERE "id" = $1"#);
        let mysql = statement(Dialect::Mysql, &columns[..]);
        assert_eq!(
            mysql.insert(1, true),
            "INSERT INTO `t` (`id`, `tag`, `n`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `tag` = VALUES(`tag`), `n` = VALUES(`n`)"
        );
        let key_only = statement(Dialect::Sqlite, &columns[..1]);
        assert_eq!(
            key_only.insert(1, true),
            r#"INSERT INTO "t" ("id") VALUES (?) ON CONFLICT ("id") DO NOTHING"#
        );
        let mysql_key_only = statement(Dialect::Mysql, &columns[..1]);
        assert_eq!(
            mysql_key_only.insert(1, true),
            "INSERT INTO `t` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = `id`"
        );
    }

    #[test]
    fn postgres_bulk_loads_copy_into_the_table_or_a_staging_table() {
        let columns = [
            column("id", Kind::Int, "int8"),
            column("n", Kind::Int, "int4"),
        ];
        let statement = Statement {
            dialect: Dialect::Postgres,
            table: "t",
            columns: &columns,
            key: vec![0],
        };
        let insert = statement.copy_load(false);
        assert_eq!(insert.copy, r#"COPY "t" ("id", "n") FROM STDIN"#);
        assert!(insert.before.is_empty() && insert.after.is_empty());
        let upsert = statement.copy_load(true);
        assert_eq!(
            upsert.before,
            [
                r#"CREATE TEMPORARY TABLE "tributary_stage" ON COMMIT DROP AS SELECT "id", "n" FROM "t" WITH NO DATA"#
            ]
        );
        assert_eq!(
            upsert.copy,
            r#"COPY pg_temp."tributary_stage" ("id", "n") FROM STDIN"#
        );
        assert_eq!(
            upsert.after,
            [
                r#"INSERT INTO "t" ("id", "n") SELECT "id", "n" FROM pg_temp."tributary_stage" ON CONFLICT ("id") DO UPDATE SET "n" = EXCLUDED."n""#
            ]
        );
    }
}
