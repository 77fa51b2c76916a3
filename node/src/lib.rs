//! Branch store edge node.
