//! Walking folders, parallel header reads, file identity.
