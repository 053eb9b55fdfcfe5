//! Field types shared by several kinds, each carrying its own schema and CEL
//! rules, so that a rule is written once and enforced by the API server
//! wherever the field appears (an interface name on a PhysicalRouter, a
//! LogicalInterface and a VirtualGateway obeys the same rule, with the same
//! message).
//!
//! The API server ignores `format: ip`/`format: cidr`, so addresses are
//! checked with the CEL `isIP`/`isCIDR` library functions instead. Every rule
//! is guarded (`!isCIDR(self) || ...`) so that a malformed value reports the
//! format error alone, never a CEL evaluation error.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Declares a `String` newtype with a hand-written schema.
macro_rules! string_field {
    ($(#[$meta:meta])* $name:ident, $schema:tt) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The value as written by the user.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_field!(
    /// A Linux network interface name (`IFNAMSIZ` minus the terminating NUL).
    InterfaceName,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 15,
        "x-kubernetes-validations": [{
            "rule": "!self.matches('[/:[:space:]]') && self != '.' && self != '..'",
            "message": "must be a Linux interface name: 1 to 15 characters, without '/', ':' or whitespace, and not '.' or '..' (e.g. eth1, ens5f0, vgw1)",
            "reason": "FieldValueInvalid"
        }]
    }
);

string_field!(
    /// A unicast Ethernet MAC address, six hex octets separated by `:` or `-`.
    MacAddress,
    {
        "type": "string",
        "maxLength": 17,
        "x-kubernetes-validations": [
            {
                "rule": "self.matches('^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$') || self.matches('^[0-9a-fA-F]{2}(-[0-9a-fA-F]{2}){5}$')",
                "message": "must be a MAC address of six hex octets separated by ':' or '-' (e.g. 02:00:00:00:01:01)",
                "reason": "FieldValueInvalid"
            },
            {
                "rule": "!self.matches('^[0-9a-fA-F]{2}') || self.matches('^.[02468aceACE]')",
                "message": "must be a unicast MAC address: the low bit of the first octet must be 0 (e.g. 02:.., not 01:.. or 03:..)",
                "reason": "FieldValueInvalid"
            },
            {
                "rule": "!self.matches('^00[:-]00[:-]00[:-]00[:-]00[:-]00$')",
                "message": "must not be the all-zero MAC address",
                "reason": "FieldValueInvalid"
            }
        ]
    }
);

string_field!(
    /// An IPv4 or IPv6 address, without a prefix length.
    IpAddress,
    {
        "type": "string",
        "maxLength": 45,
        "x-kubernetes-validations": [{
            "rule": "isIP(self)",
            "message": "must be an IPv4 or IPv6 address without a prefix length (e.g. 192.168.1.10 or fd00::10)",
            "reason": "FieldValueInvalid"
        }]
    }
);

string_field!(
    /// An IPv4 or IPv6 network prefix in CIDR notation, without host bits set.
    IpPrefix,
    {
        "type": "string",
        "maxLength": 49,
        "x-kubernetes-validations": [
            {
                "rule": "isCIDR(self)",
                "message": "must be an IPv4 or IPv6 prefix in CIDR notation (e.g. 192.168.1.0/24 or fd00:1::/64)",
                "reason": "FieldValueInvalid"
            },
            {
                "rule": "!isCIDR(self) || cidr(self).ip() == cidr(self).masked().ip()",
                "message": "must not have host bits set: write the network address (e.g. 192.168.1.0/24, not 192.168.1.5/24)",
                "reason": "FieldValueInvalid"
            }
        ]
    }
);

string_field!(
    /// An IPv4 or IPv6 address with a prefix length; host bits may be set
    /// (an allowed address pair `10.0.0.5/32`, or `10.0.0.0/24`).
    IpAddressPrefix,
    {
        "type": "string",
        "maxLength": 49,
        "x-kubernetes-validations": [{
            "rule": "isCIDR(self)",
            "message": "must be an IPv4 or IPv6 address with a prefix length (e.g. 10.0.0.5/32 or fd00::5/128)",
            "reason": "FieldValueInvalid"
        }]
    }
);

string_field!(
    /// A BGP route target (RFC 4360): `target:ASN:NN` (a 2-byte AS number
    /// with a 4-byte number, or a 4-byte AS number with a 2-byte number) or
    /// `target:IPv4:NN` (a 2-byte number).
    RouteTarget,
    {
        "type": "string",
        "maxLength": 40,
        "x-kubernetes-validations": [
            {
                "rule": "self.matches('^target:([0-9]{1,10}|[0-9]{1,3}([.][0-9]{1,3}){3}):[0-9]{1,10}$')",
                "message": "must be a route target target:ASN:NN or target:IPv4:NN (e.g. target:64512:100 or target:192.0.2.1:7)",
                "reason": "FieldValueInvalid"
            },
            {
                "rule": "!self.matches('^target:([0-9]{1,10}|[0-9]{1,3}([.][0-9]{1,3}){3}):[0-9]{1,10}$') || (self.split(':')[1].contains('.') ? (isIP(self.split(':')[1]) && int(self.split(':')[2]) <= 65535) : (int(self.split(':')[1]) <= 4294967295 && int(self.split(':')[2]) <= (int(self.split(':')[1]) > 65535 ? 65535 : 4294967295)))",
                "message": "route target out of range: target:ASN:NN takes a 2-byte AS number with NN up to 4294967295 or a 4-byte AS number with NN up to 65535; target:IPv4:NN takes an IPv4 address and NN up to 65535",
                "reason": "FieldValueInvalid"
            }
        ]
    }
);

string_field!(
    /// A BGP route distinguisher (RFC 4364): `ASN:NN` or `IPv4:NN`, with
    /// the ranges of a route target.
    RouteDistinguisher,
    {
        "type": "string",
        "maxLength": 33,
        "x-kubernetes-validations": [
            {
                "rule": "self.matches('^([0-9]{1,10}|[0-9]{1,3}([.][0-9]{1,3}){3}):[0-9]{1,10}$')",
                "message": "must be a route distinguisher ASN:NN or IPv4:NN (e.g. 64512:100 or 192.0.2.1:7)",
                "reason": "FieldValueInvalid"
            },
            {
                "rule": "!self.matches('^([0-9]{1,10}|[0-9]{1,3}([.][0-9]{1,3}){3}):[0-9]{1,10}$') || (self.split(':')[0].contains('.') ? (isIP(self.split(':')[0]) && int(self.split(':')[1]) <= 65535) : (int(self.split(':')[0]) <= 4294967295 && int(self.split(':')[1]) <= (int(self.split(':')[0]) > 65535 ? 65535 : 4294967295)))",
                "message": "route distinguisher out of range: ASN:NN takes a 2-byte AS number with NN up to 4294967295 or a 4-byte AS number with NN up to 65535; IPv4:NN takes an IPv4 address and NN up to 65535",
                "reason": "FieldValueInvalid"
            }
        ]
    }
);

string_field!(
    /// The name of a cluster object: a DNS-1123 subdomain.
    ObjectName,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 253,
        "x-kubernetes-validations": [{
            "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
            "message": "must be a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. gw-node-1)",
            "reason": "FieldValueInvalid"
        }]
    }
);

string_field!(
    /// The name of a namespace: a DNS-1123 label.
    NamespaceName,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 63,
        "x-kubernetes-validations": [{
            "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": "must be a namespace name: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
            "reason": "FieldValueInvalid"
        }]
    }
);

/// A reference to a namespaced object (a VirtualMachineInterface or a
/// VirtualNetwork) from a cluster-scoped one.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacedRef {
    /// Namespace (tenant / project) of the referenced object.
    pub namespace: NamespaceName,
    /// Name of the referenced object.
    pub name: ObjectName,
}

impl std::fmt::Display for NamespacedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
