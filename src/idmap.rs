//! Id maps for user namespaces.
