//! ACM in us-east-1 (the only region CloudFront takes certificates from): find an ISSUED
//! certificate that covers every name, or request one with DNS validation and read its
//! validation records. Name coverage is pure and unit-tested.

use anyhow::{Result, anyhow};
use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm, Tag, ValidationMethod};

use crate::aws::call_error;

/// What skiff needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Its ARN.
    pub arn: String,
    /// `ISSUED`, `PENDING_VALIDATION`, `FAILED`, …
    pub status: String,
    /// The names it covers (domain name and SANs).
    pub names: Vec<String>,
    /// When it expires (seconds since the epoch), once issued.
    pub not_after: Option<i64>,
    /// The DNS validation records ACM asks for: (name, value), deduplicated.
    pub validation: Vec<(String, String)>,
    /// Whether ACM has yet to give the record of some name (it takes a few seconds).
    pub validation_pending: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Its key algorithm (`RSA_2048`, `EC_prime256v1`, …), when ACM says.
    pub key_algorithm: Option<String>,
}

impl Certificate {
    /// Whether it can serve every name now, from CloudFront.
    pub fn usable_for(&self, names: &[String], now: i64) -> bool {
        self.status == "ISSUED"
            && self.not_after.is_none_or(|t| t > now)
            && covers_all(&self.names, names)
            && self.key_algorithm.as_deref().is_none_or(cloudfront_takes)
    }
}

/// The key algorithms CloudFront accepts for a viewer certificate: RSA 1024 to 4096 bits
/// and ECDSA P-256. ACM also issues P-384 and P-521 certificates, which a distribution
/// refuses.
/// <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cnames-and-https-requirements.html>
const CLOUDFRONT_KEYS: [KeyAlgorithm; 5] = [
    KeyAlgorithm::Rsa1024,
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::Rsa4096,
    KeyAlgorithm::EcPrime256v1,
];

/// Whether CloudFront takes a certificate with this key algorithm (ACM's spelling).
pub fn cloudfront_takes(key_algorithm: &str) -> bool {
    CLOUDFRONT_KEYS.iter().any(|k| k.as_str() == key_algorithm)
}

/// Whether a certificate name (`example.com`, `*.example.com`) covers a host name. A
/// wildcard covers exactly one label; a wildcard host needs the same wildcard.
pub fn covers(certificate_name: &str, host: &str) -> bool {
    let certificate_name = certificate_name.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if certificate_name == host {
        return true;
    }
    match (certificate_name.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((label, rest))) => label != "*" && !label.is_empty() && rest == parent,
        _ => false,
    }
}

/// Whether the certificate names cover every host.
pub fn covers_all(certificate_names: &[String], hosts: &[String]) -> bool {
    hosts.iter().all(|host| certificate_names.iter().any(|name| covers(name, host)))
}

/// The idempotency token for a request: the same site and names within an hour get the
/// same certificate back (an interrupted provision does not request a second one).
pub fn idempotency_token(bucket: &str, names: &[String]) -> String {
    let text = std::iter::once(bucket).chain(names.iter().map(String::as_str)).collect::<Vec<_>>().join("\0");
    crate::object::Digest::of(text.as_bytes()).to_hex()[..32].to_string()
}

/// Describe one certificate; `None` when it does not exist (any more).
pub async fn describe(client: &aws_sdk_acm::Client, arn: &str) -> Result<Option<Certificate>> {
    let described = match client.describe_certificate().certificate_arn(arn).send().await {
        Ok(d) => d,
        Err(e) if crate::aws::code(&e).as_deref() == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(call_error("acm:DescribeCertificate", &format!("certificate {arn}"), &e)),
    };
    let Some(detail) = described.certificate() else { return Ok(None) };
    let mut names: Vec<String> = detail.subject_alternative_names().to_vec();
    if let Some(domain) = detail.domain_name()
        && !names.iter().any(|n| n == domain)
    {
        names.push(domain.to_string());
    }
    let mut validation: Vec<(String, String)> = Vec::new();
    for option in detail.domain_validation_options() {
        if let Some(record) = option.resource_record() {
            let pair = (crate::dns::normalize(record.name()), crate::dns::normalize(record.value()));
            if !validation.contains(&pair) {
                validation.push(pair);
            }
        }
    }
    Ok(Some(Certificate {
        arn: arn.to_string(),
        status: detail.status().map_or_else(String::new, |s| s.as_str().to_string()),
        names,
        not_after: detail.not_after().map(aws_sdk_acm::primitives::DateTime::secs),
        validation,
        validation_pending: detail.domain_validation_options().iter().any(|o| o.resource_record().is_none()),
        failure: detail.failure_reason().map(|r| r.as_str().to_string()),
        key_algorithm: detail.key_algorithm().map(|k| k.as_str().to_string()),
    }))
}

/// An ISSUED certificate that covers every name and has not expired, preferring ones ACM
/// issued (they renew by themselves).
pub async fn find_issued(client: &aws_sdk_acm::Client, hosts: &[String]) -> Result<Option<Certificate>> {
    let now = crate::time::now();
    let mut token: Option<String> = None;
    let mut candidates = Vec::new();
    loop {
        // The default filter shows only RSA-1024/2048 keys; ask for every kind CloudFront
        // takes, and no other.
        let filters = Filters::builder().set_key_types(Some(CLOUDFRONT_KEYS.to_vec())).build();
        let page = client
            .list_certificates()
            .certificate_statuses(CertificateStatus::Issued)
            .includes(filters)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| call_error("acm:ListCertificates", "certificates in us-east-1", &e))?;
        for summary in page.certificate_summary_list() {
            // ListCertificates applies the filter; a service that ignores it is checked here.
            if summary.key_algorithm().is_some_and(|k| !cloudfront_takes(k.as_str())) {
                continue;
            }
            let mut names = summary.subject_alternative_name_summaries().to_vec();
            if let Some(domain) = summary.domain_name() {
                names.push(domain.to_string());
            }
            // Without SAN summaries (some ACM-compatible services omit them) or with more
            // than 100 names, only DescribeCertificate tells.
            let complete = !summary.has_additional_subject_alternative_names().unwrap_or(false)
                && !summary.subject_alternative_name_summaries().is_empty();
            if (covers_all(&names, hosts) || !complete)
                && let Some(arn) = summary.certificate_arn()
            {
                candidates.push(arn.to_string());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for arn in candidates {
        if let Some(certificate) = describe(client, &arn).await?
            && certificate.usable_for(hosts, now)
        {
            return Ok(Some(certificate));
        }
    }
    Ok(None)
}

/// Request a certificate for `hosts` (the first is the domain name) with DNS validation.
pub async fn request(client: &aws_sdk_acm::Client, bucket: &str, hosts: &[String]) -> Result<String> {
    let (first, rest) = hosts.split_first().ok_or_else(|| anyhow!("no names for the certificate"))?;
    let response = client
        .request_certificate()
        .domain_name(first)
        .set_subject_alternative_names(Some(hosts.to_vec()).filter(|_| !rest.is_empty()))
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(idempotency_token(bucket, hosts))
        .tags(Tag::builder().key(crate::aws::TAG).value(bucket).build()?)
        .send()
        .await
        .map_err(|e| call_error("acm:RequestCertificate", &format!("a certificate for {}", hosts.join(", ")), &e))?;
    response.certificate_arn().map(str::to_string).ok_or_else(|| anyhow!("ACM returned no certificate ARN"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("example.com", "example.com"));
        assert!(covers("*.example.com", "www.example.com"));
        assert!(covers("*.Example.com", "WWW.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "*.preview.example.com"));
        assert!(covers("*.preview.example.com", "*.preview.example.com"));
        assert!(!covers("www.example.com", "*.example.com"));
    }

    #[test]
    fn a_certificate_must_cover_every_name() {
        let hosts = names(&["example.com", "www.example.com", "*.preview.example.com"]);
        assert!(covers_all(&names(&["example.com", "*.example.com", "*.preview.example.com"]), &hosts));
        assert!(!covers_all(&names(&["example.com", "*.example.com"]), &hosts));
        let issued = |status: &str, not_after| Certificate {
            arn: "arn".into(),
            status: status.into(),
            names: hosts.clone(),
            not_after,
            validation: vec![],
            validation_pending: false,
            failure: None,
            key_algorithm: Some("RSA_2048".into()),
        };
        assert!(issued("ISSUED", Some(200)).usable_for(&hosts, 100));
        for (key, usable) in
            [("EC_prime256v1", true), ("RSA_4096", true), ("EC_secp384r1", false), ("EC_secp521r1", false)]
        {
            let certificate = Certificate { key_algorithm: Some(key.into()), ..issued("ISSUED", Some(200)) };
            assert_eq!(certificate.usable_for(&hosts, 100), usable, "{key}");
        }
        assert!(!issued("ISSUED", Some(50)).usable_for(&hosts, 100));
        assert!(!issued("PENDING_VALIDATION", None).usable_for(&hosts, 100));
    }

    #[test]
    fn tokens_are_stable_and_fit_acm() {
        let a = idempotency_token("site", &names(&["example.com"]));
        assert_eq!(a, idempotency_token("site", &names(&["example.com"])));
        assert_ne!(a, idempotency_token("site", &names(&["example.org"])));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
