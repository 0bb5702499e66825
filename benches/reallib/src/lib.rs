//! Empty: this crate only pins `libz-sys` and `libsqlite3-sys` so that `cargo metadata` can locate the C sources
//! they vendor (zlib in `src/zlib`, the SQLite amalgamation in `sqlite3/`). Nothing builds it.
