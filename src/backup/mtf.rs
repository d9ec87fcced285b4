//! The MTF walker: descriptor blocks and stream headers, with their checksums.
