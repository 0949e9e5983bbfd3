//! Route 53: the hosted zone for a name (longest suffix among public zones), what a name
//! points at, and UPSERTs of alias and validation records. The name arithmetic is pure and
//! unit-tested; the rest is thin SDK calls.

use anyhow::{Context as _, Result, bail};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::aws::call_error;

/// CloudFront's hosted zone id for alias records ("This value never changes").
pub const CLOUDFRONT_ZONE_ID: &str = "Z2FDTNDATAQYW2";

/// A hosted zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Its id without the `/hostedzone/` prefix.
    pub id: String,
    /// Its name, normalised (lowercase, no trailing dot).
    pub name: String,
}

/// A DNS name as Route 53 may print it (`\052.preview.example.com.`, `WWW.Example.com`) in
/// the form skiff compares: lowercase, `*` for the wildcard, no trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').replace("\\052", "*").to_ascii_lowercase()
}

/// The suffixes of a name to look for a zone under, longest first: `a.b.example.com` →
/// `a.b.example.com`, `b.example.com`, `example.com`, `com`. A leading `*.` is not a zone.
pub fn suffixes(name: &str) -> Vec<String> {
    let name = normalize(name);
    let name = name.strip_prefix("*.").unwrap_or(&name);
    let labels: Vec<&str> = name.split('.').collect();
    (0..labels.len()).map(|i| labels[i..].join(".")).collect()
}

/// Among zones listed for `suffix`, the public one whose name is exactly the suffix.
pub fn matching_zone(suffix: &str, listed: &[(String, String, bool)]) -> Option<Zone> {
    listed
        .iter()
        .find(|(_, name, private)| !private && normalize(name) == suffix)
        .map(|(id, name, _)| Zone { id: id.trim_start_matches("/hostedzone/").to_string(), name: normalize(name) })
}

/// Find the public hosted zone for `name` by longest suffix; `None` when there is none.
pub async fn find_zone(client: &aws_sdk_route53::Client, name: &str) -> Result<Option<Zone>> {
    for suffix in suffixes(name) {
        // Without the last label only: a zone for a bare TLD is not a thing to look for.
        if !suffix.contains('.') {
            break;
        }
        let listed = client
            .list_hosted_zones_by_name()
            .dns_name(&suffix)
            .max_items(10)
            .send()
            .await
            .map_err(|e| call_error("route53:ListHostedZonesByName", &format!("`{suffix}`"), &e))?;
        let zones: Vec<(String, String, bool)> = listed
            .hosted_zones()
            .iter()
            .map(|z| {
                (
                    z.id().to_string(),
                    z.name().to_string(),
                    z.config().is_some_and(aws_sdk_route53::types::HostedZoneConfig::private_zone),
                )
            })
            .collect();
        if let Some(zone) = matching_zone(&suffix, &zones) {
            return Ok(Some(zone));
        }
    }
    Ok(None)
}

/// What a name's A and AAAA records are aliases of (normalised target names), and the
/// value of its CNAME when it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// Alias target of the A record.
    pub a: Option<String>,
    /// Alias target of the AAAA record.
    pub aaaa: Option<String>,
    /// Value of a CNAME record.
    pub cname: Option<String>,
}

/// The A, AAAA and CNAME records of one name.
pub async fn records(client: &aws_sdk_route53::Client, zone: &Zone, name: &str) -> Result<Records> {
    let wanted = normalize(name);
    let listed = client
        .list_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .start_record_name(&wanted)
        .start_record_type(RrType::A)
        .max_items(4)
        .send()
        .await
        .map_err(|e| call_error("route53:ListResourceRecordSets", &format!("`{wanted}` in zone {}", zone.id), &e))?;
    let mut found = Records::default();
    for set in listed.resource_record_sets() {
        if normalize(set.name()) != wanted {
            continue;
        }
        let alias = set.alias_target().map(|a| normalize(a.dns_name()));
        match set.r#type() {
            RrType::A => found.a = alias,
            RrType::Aaaa => found.aaaa = alias,
            RrType::Cname => found.cname = set.resource_records().first().map(|r| normalize(r.value())),
            _ => {}
        }
    }
    Ok(found)
}

/// Whether a CNAME record with this name exists (validation records: a separate listing,
/// since their names sort apart from the site's names).
pub async fn cname(client: &aws_sdk_route53::Client, zone: &Zone, name: &str) -> Result<Option<String>> {
    let wanted = normalize(name);
    let listed = client
        .list_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .start_record_name(&wanted)
        .start_record_type(RrType::Cname)
        .max_items(1)
        .send()
        .await
        .map_err(|e| call_error("route53:ListResourceRecordSets", &format!("`{wanted}` in zone {}", zone.id), &e))?;
    Ok(listed
        .resource_record_sets()
        .iter()
        .find(|s| normalize(s.name()) == wanted && *s.r#type() == RrType::Cname)
        .and_then(|s| s.resource_records().first())
        .map(|r| normalize(r.value())))
}

/// UPSERT alias A and AAAA records for `names` (all in `zone`) to a CloudFront domain.
pub async fn upsert_aliases(
    client: &aws_sdk_route53::Client,
    zone: &Zone,
    names: &[String],
    target: &str,
) -> Result<()> {
    let mut changes = Vec::new();
    for name in names {
        for kind in [RrType::A, RrType::Aaaa] {
            let alias = AliasTarget::builder()
                .hosted_zone_id(CLOUDFRONT_ZONE_ID)
                .dns_name(target)
                .evaluate_target_health(false)
                .build()?;
            let set = ResourceRecordSet::builder().name(format!("{name}.")).r#type(kind).alias_target(alias).build()?;
            changes.push(Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build()?);
        }
    }
    change(client, zone, changes, "alias records").await
}

/// UPSERT CNAME records (certificate validation), never deleted by skiff.
pub async fn upsert_cnames(client: &aws_sdk_route53::Client, zone: &Zone, records: &[(String, String)]) -> Result<()> {
    let mut changes = Vec::new();
    for (name, value) in records {
        let set = ResourceRecordSet::builder()
            .name(format!("{}.", normalize(name)))
            .r#type(RrType::Cname)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(format!("{}.", normalize(value))).build()?)
            .build()?;
        changes.push(Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build()?);
    }
    change(client, zone, changes, "certificate validation records").await
}

async fn change(client: &aws_sdk_route53::Client, zone: &Zone, changes: Vec<Change>, what: &str) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let batch = ChangeBatch::builder().comment(format!("skiff: {what}")).set_changes(Some(changes)).build()?;
    let result = client.change_resource_record_sets().hosted_zone_id(&zone.id).change_batch(batch).send().await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if crate::aws::code(&e).as_deref() == Some("InvalidChangeBatch") => {
            let message = crate::aws::failure(&e);
            bail!("Route 53 refused the {what} in zone `{}` ({}): {message:?}", zone.name, zone.id)
        }
        Err(e) => {
            Err(call_error("route53:ChangeResourceRecordSets", &format!("zone `{}` ({})", zone.name, zone.id), &e))
                .context(format!("could not write the {what}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_both_wildcard_forms() {
        assert_eq!(normalize("\\052.preview.example.com."), "*.preview.example.com");
        assert_eq!(normalize("*.Preview.Example.com"), "*.preview.example.com");
        assert_eq!(normalize("d111.cloudfront.net"), "d111.cloudfront.net");
    }

    #[test]
    fn suffixes_go_longest_first_and_skip_the_wildcard() {
        assert_eq!(suffixes("a.b.example.com"), ["a.b.example.com", "b.example.com", "example.com", "com"]);
        assert_eq!(suffixes("*.preview.example.com."), ["preview.example.com", "example.com", "com"]);
    }

    #[test]
    fn zones_match_exactly_and_only_public() {
        let listed = vec![
            ("/hostedzone/ZPRIV".to_string(), "example.com.".to_string(), true),
            ("/hostedzone/ZPUB".to_string(), "example.com.".to_string(), false),
            ("/hostedzone/ZOTHER".to_string(), "example.net.".to_string(), false),
        ];
        assert_eq!(matching_zone("example.com", &listed), Some(Zone { id: "ZPUB".into(), name: "example.com".into() }));
        // ListHostedZonesByName starts at the name but goes on to later ones.
        assert_eq!(matching_zone("b.example.com", &listed), None);
        assert_eq!(matching_zone("example.com", &listed[..1]), None);
    }
}
