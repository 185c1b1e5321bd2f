//! Spawning processes into namespaces.
