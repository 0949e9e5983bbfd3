//! `skiff status`: what is live for a provisioned site, read from `_skiff/state.json` and
//! the resources it names. Only read requests.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::config::StatusSettings as Settings;
use crate::output::{Output, Render};
use crate::state::SITE_STATE_KEY;
use crate::store::S3Store;
use crate::{aws, cert, distribution, dns, router};

/// Certificates closer than this to expiry get a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// The report (also the `--json` document).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The domain.
    pub domain: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The bucket's region.
    pub region: String,
    /// The site's URL.
    pub url: Option<String>,
    /// The distribution.
    pub distribution: Option<DistributionReport>,
    /// The router's KeyValueStore (its ARN), for IAM policies.
    pub key_value_store: Option<String>,
    /// The certificate.
    pub certificate: Option<CertificateReport>,
    /// Per name: whether A and AAAA point at the distribution.
    pub dns: BTreeMap<String, DnsReport>,
    /// Target → live deploy id.
    pub live: BTreeMap<String, String>,
    /// Number of previews with a live deploy.
    pub previews: usize,
    /// Problems found.
    pub warnings: Vec<String>,
}

/// The distribution's state.
#[derive(Debug, Serialize)]
pub struct DistributionReport {
    /// Its id.
    pub id: String,
    /// `InProgress` or `Deployed`.
    pub status: String,
    /// `dxxxx.cloudfront.net`.
    pub domain: String,
    /// Its alternate domain names.
    pub aliases: Vec<String>,
    /// Whether it serves.
    pub enabled: bool,
}

/// The certificate's state.
#[derive(Debug, Serialize)]
pub struct CertificateReport {
    /// Its ARN.
    pub arn: String,
    /// `ISSUED`, `PENDING_VALIDATION`, …
    pub status: String,
    /// Expiry, seconds since the epoch.
    pub not_after: Option<i64>,
    /// Whole days until it expires.
    pub days_left: Option<i64>,
}

/// One name's records.
#[derive(Debug, Serialize)]
pub struct DnsReport {
    /// The A record's alias target.
    pub a: Option<String>,
    /// The AAAA record's alias target.
    pub aaaa: Option<String>,
    /// Both point at the distribution.
    pub ok: bool,
}

/// `skiff status`.
pub async fn status(settings: &Settings, out: &Output) -> Result<()> {
    let shared = aws::sdk_config(&settings.aws).await?;
    let s3 = aws::s3_client(&shared);
    let store = S3Store::new(s3, &settings.bucket, "", u64::MAX);
    let Some((state, _)) = crate::deploys::read_state(&store).await? else {
        bail!(
            "s3://{}/{SITE_STATE_KEY} does not exist: this bucket is not a provisioned skiff site\nhint: run `skiff provision` first",
            settings.bucket
        );
    };
    let cloudfront = aws::cloudfront_client(&shared);
    let acm = aws::acm_client(&shared);
    let route53 = aws::route53_client(&shared);
    let kvs = aws::kvs_client(&shared);
    let resources = &state.resources;
    let mut warnings = Vec::new();

    let mut live_distribution = None;
    if let Some(id) = &resources.distribution_id {
        live_distribution = distribution::get(&cloudfront, id).await?;
        if live_distribution.is_none() {
            warnings.push(format!("distribution {id} no longer exists: run `skiff provision`"));
        }
    }
    let distribution = live_distribution.as_ref().map(|d| DistributionReport {
        id: d.id.clone(),
        status: d.status.clone(),
        domain: d.domain.clone(),
        aliases: d.config.aliases.as_ref().and_then(|a| a.items.clone()).unwrap_or_default(),
        enabled: d.config.enabled,
    });
    if let Some(d) = &distribution {
        if !d.enabled {
            warnings.push(format!("distribution {} is disabled", d.id));
        } else if !d.status.eq_ignore_ascii_case("deployed") {
            warnings.push(format!("distribution {} is still deploying ({})", d.id, d.status));
        }
    }

    let now = crate::time::now();
    let mut certificate = None;
    if let Some(arn) = &resources.certificate_arn {
        match cert::describe(&acm, arn).await? {
            Some(c) => {
                let days_left = c.not_after.map(|t| (t - now).div_euclid(86_400));
                if c.status != "ISSUED" {
                    warnings.push(format!("certificate {arn} is {}", c.status));
                } else if let Some(days) = days_left.filter(|d| *d < EXPIRY_WARNING_DAYS) {
                    warnings.push(format!(
                        "certificate {arn} expires in {days} days (ACM renews it only while its validation records exist)"
                    ));
                }
                certificate =
                    Some(CertificateReport { arn: arn.clone(), status: c.status, not_after: c.not_after, days_left });
            }
            None => warnings.push(format!("certificate {arn} no longer exists: run `skiff provision`")),
        }
    }

    let mut dns_report = BTreeMap::new();
    if let Some(d) = &distribution {
        let target = dns::normalize(&d.domain);
        for host in &d.aliases {
            let Some(zone) = dns::find_zone(&route53, host).await? else {
                warnings.push(format!("no hosted zone for {host}"));
                continue;
            };
            let records = dns::records(&route53, &zone, host).await?;
            let ok = records.a.as_deref() == Some(target.as_str()) && records.aaaa.as_deref() == Some(target.as_str());
            if !ok {
                warnings.push(format!("{host} does not point at the distribution (A/AAAA): run `skiff provision`"));
            }
            dns_report.insert(host.clone(), DnsReport { a: records.a, aaaa: records.aaaa, ok });
        }
    }

    let mut live = BTreeMap::new();
    if let Some(arn) = &resources.kvs_arn {
        for (key, value) in router::read_keys(&kvs, arn).await? {
            if key == "production" || key == "canary" || key.starts_with("preview-") {
                live.insert(key, value);
            }
        }
    }
    let previews = live.keys().filter(|k| k.starts_with("preview-")).count();
    if !live.contains_key("production") {
        warnings.push("nothing is published to production yet: run `skiff publish`".to_string());
    }

    let report = Report {
        url: state.domain.as_ref().map(|d| format!("https://{d}")),
        domain: state.domain.clone(),
        bucket: state.bucket.clone(),
        region: state.region.clone(),
        distribution,
        key_value_store: resources.kvs_arn.clone(),
        certificate,
        dns: dns_report,
        live,
        previews,
        warnings,
    };
    out.render(&report);
    Ok(())
}

impl Render for Report {
    /// The report is the command's result: it goes to stdout (`skiff status | grep dns`),
    /// with the URL as its last line; warnings stay on stderr.
    fn data(&self) -> Vec<String> {
        let mut lines = self.table();
        lines.extend(self.url.iter().map(|url| format!("url           {url}")));
        lines
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

impl Report {
    fn table(&self) -> Vec<String> {
        let none = || "-".to_string();
        let mut lines = vec![format!(
            "site          {} (bucket {}, {})",
            self.domain.clone().unwrap_or_else(none),
            self.bucket,
            self.region
        )];
        match &self.distribution {
            Some(d) => {
                lines.push(format!("distribution  {} {} ({})", d.id, d.status, d.domain));
                lines.push(format!("names         {}", d.aliases.join(", ")));
            }
            None => lines.push("distribution  none".to_string()),
        }
        match &self.certificate {
            Some(c) => lines.push(format!(
                "certificate   {}{}",
                c.status,
                c.days_left.map(|d| format!(", expires in {d} days")).unwrap_or_default()
            )),
            None => lines.push("certificate   none".to_string()),
        }
        let ok = self.dns.values().filter(|d| d.ok).count();
        lines.push(format!("dns           {ok} of {} names point at the distribution", self.dns.len()));
        lines.push(format!(
            "production    {}",
            self.live.get("production").cloned().unwrap_or_else(|| "no deploy yet".to_string())
        ));
        if let Some(canary) = self.live.get("canary") {
            let (id, weight) = canary.split_once(' ').unwrap_or((canary.as_str(), "?"));
            lines.push(format!("canary        {id} ({weight} % of visitors)"));
        }
        lines.push(format!("previews      {}", self.previews));
        lines
    }
}
