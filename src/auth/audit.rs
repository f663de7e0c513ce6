//! The audit log, as `auth` sees it: the table and its redaction are
//! [`crate::hub::audit`] (a printer change and its row commit in one hub
//! transaction); key changes and `/api/admin/audit` use them from here.

pub use crate::hub::audit::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn redact_hides_named_secrets_keys_and_uri_credentials() {
        let key = crate::auth::key::generate().unwrap();
        let mut v = json!({
            "name": "office",
            "snmp": {"community": "s3cret", "discover": true},
            "uri": "tcp://admin:pw@10.0.0.5:9100?community=private&x=1",
            "notes": format!("old key was {}", key.expose()),
            "key_prefix": key.prefix(),
            "key_hash": "abc",
            "list": [{"token": "t"}],
            "expires_at": null,
        });
        redact(&mut v);
        let text = v.to_string();
        for secret in [
            "s3cret",
            "admin:pw",
            "private",
            &key.expose()[16..],
            "abc",
            "\"t\"",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert_eq!(v["key_prefix"], key.prefix());
        assert_eq!(v["snmp"]["discover"], true);
        assert_eq!(
            v["uri"],
            format!("tcp://{REDACTED}@10.0.0.5:9100?community={REDACTED}&x=1")
        );
        assert_eq!(v["expires_at"], Value::Null);
    }
}
