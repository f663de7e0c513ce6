-- Issue 9 (policy): the SNMP community is a credential. It lives in its own
-- column, never in `printers.uri`; the API shows it to admin routes only
-- (upstream's `connection.snmp.community`) and `***` everywhere else, and
-- logs and audit rows carry `***`. NULL = the default community (`public`).
-- Rows written before this migration may still carry `community=` in their
-- URI: it keeps working and is redacted wherever the URI is shown; the next
-- admin change of the connection moves it here.
ALTER TABLE printers ADD COLUMN snmp_community TEXT;
