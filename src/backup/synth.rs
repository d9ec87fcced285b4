//! The synthetic backup writer: format-faithful MTF log, full and differential backups.
