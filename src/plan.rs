//! Pure planning: which logs to apply, which files to copy, what to skip and why.
