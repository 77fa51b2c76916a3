-- What a segment reads of each member's profile (`protocol::segment::Facets`), sealed under the
-- member's key like the record beside it: a segment on the profile reads these few dozen bytes
-- a member instead of every record and its document. Filled when the hub rebuilds its derived
-- state (derived version 19) and with every write of a record after.
ALTER TABLE members ADD COLUMN facets BYTEA;
