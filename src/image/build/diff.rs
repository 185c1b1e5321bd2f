//! An overlay upper directory as a layer tar. (Interface stub.)
