-- The directory is read a page at a time in byte order (`members_after`: member_id COLLATE "C"
-- after the last one read). The primary key's index sorts by the database's collation, which
-- need not be "C": this index lets each page start where the last ended instead of sorting the
-- whole table again.
CREATE INDEX members_by_id_c ON members (member_id COLLATE "C");
