//! The CloudFront distribution and Origin Access Control that `skiff provision` owns: the
//! desired configuration, the settings skiff compares (pure), the merge of the desired
//! settings into a live configuration (other settings are left alone), and the calls.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CachedMethods, CustomErrorResponse, CustomErrorResponses, DefaultCacheBehavior,
    DistributionConfig, EventType, FunctionAssociation, FunctionAssociations, HttpVersion, Method,
    MinimumProtocolVersion, Origin, OriginAccessControlConfig, OriginAccessControlOriginTypes,
    OriginAccessControlSigningBehaviors, OriginAccessControlSigningProtocols, Origins, PriceClass, S3OriginConfig,
    SslSupportMethod, Tag, Tags, ViewerCertificate, ViewerProtocolPolicy,
};

use crate::aws::call_error;

/// The id of skiff's S3 origin in the distribution.
pub const ORIGIN_ID: &str = "skiff-s3";
/// Managed cache policy CachingOptimized.
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
/// Managed response headers policy SecurityHeadersPolicy.
pub const SECURITY_HEADERS: &str = "67f7725c-6f97-4210-82d7-5512b31e9d03";

/// CloudFront already holds a distribution with this CallerReference: an earlier run
/// created it and stopped before it recorded the id.
#[derive(Debug, thiserror::Error)]
#[error("a distribution with this site's CallerReference already exists")]
pub struct AlreadyExists;

/// What the distribution must be, given the other resources.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The bucket (for the comment and the origin).
    pub bucket: String,
    /// The bucket's region.
    pub region: String,
    /// Every name the distribution answers for, wildcard included.
    pub aliases: Vec<String>,
    /// The certificate; `None` while it is still to be requested.
    pub certificate_arn: Option<String>,
    /// The router; `None` while it is still to be created.
    pub function_arn: Option<String>,
    /// Whether the router also runs on viewer-response (previews need `X-Robots-Tag`).
    pub viewer_response: bool,
    /// The OAC; `None` while it is still to be created.
    pub oac_id: Option<String>,
}

/// How a value that does not exist yet shows in a plan.
const NEW: &str = "(created by this run)";

impl Desired {
    /// The S3 REST endpoint of the bucket (OAC needs it, not the website endpoint).
    pub fn origin_domain(&self) -> String {
        format!("{}.s3.{}.amazonaws.com", self.bucket, self.region)
    }

    /// The distribution's comment, by which people (and skiff) recognise it.
    pub fn comment(&self) -> String {
        let mut comment = format!("skiff site {}", self.bucket);
        comment.truncate(128);
        comment
    }

    /// The full configuration for a new distribution.
    pub fn config(&self, caller_reference: &str) -> Result<DistributionConfig> {
        let mut aliases = self.aliases.clone();
        aliases.sort();
        let origin = Origin::builder()
            .id(ORIGIN_ID)
            .domain_name(self.origin_domain())
            .origin_path("")
            .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
            .origin_access_control_id(self.oac_id.clone().unwrap_or_else(|| NEW.into()))
            .build()?;
        let function = self.function_arn.clone().unwrap_or_else(|| NEW.into());
        let mut associations =
            vec![FunctionAssociation::builder().function_arn(&function).event_type(EventType::ViewerRequest).build()?];
        if self.viewer_response {
            associations.push(
                FunctionAssociation::builder().function_arn(&function).event_type(EventType::ViewerResponse).build()?,
            );
        }
        let get_head = || vec![Method::Get, Method::Head];
        let behavior = DefaultCacheBehavior::builder()
            .target_origin_id(ORIGIN_ID)
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
            .allowed_methods(
                AllowedMethods::builder()
                    .quantity(2)
                    .set_items(Some(get_head()))
                    .cached_methods(CachedMethods::builder().quantity(2).set_items(Some(get_head())).build()?)
                    .build()?,
            )
            .compress(true)
            .cache_policy_id(CACHING_OPTIMIZED)
            .response_headers_policy_id(SECURITY_HEADERS)
            .function_associations(
                FunctionAssociations::builder().quantity(len(&associations)).set_items(Some(associations)).build()?,
            )
            .build()?;
        let errors = [403, 404]
            .into_iter()
            .map(|code| {
                CustomErrorResponse::builder()
                    .error_code(code)
                    .response_page_path(format!("/{}", crate::state::ERROR_PAGE_KEY))
                    .response_code("404")
                    .error_caching_min_ttl(10)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DistributionConfig::builder()
            .caller_reference(caller_reference)
            .comment(self.comment())
            .enabled(true)
            .aliases(Aliases::builder().quantity(len(&aliases)).set_items(Some(aliases)).build()?)
            .default_root_object("index.html")
            .origins(Origins::builder().quantity(1).items(origin).build()?)
            .default_cache_behavior(behavior)
            .custom_error_responses(CustomErrorResponses::builder().quantity(2).set_items(Some(errors)).build()?)
            .price_class(PriceClass::PriceClass100)
            .http_version(HttpVersion::Http2and3)
            .is_ipv6_enabled(true)
            .viewer_certificate(
                ViewerCertificate::builder()
                    .acm_certificate_arn(self.certificate_arn.clone().unwrap_or_else(|| NEW.into()))
                    .ssl_support_method(SslSupportMethod::SniOnly)
                    .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
                    .build(),
            )
            .build()?)
    }
}

fn len<T>(items: &[T]) -> i32 {
    i32::try_from(items.len()).unwrap_or(i32::MAX)
}

/// The settings skiff owns, as text (what a plan shows and what drift is measured on).
pub fn settings(config: &DistributionConfig) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let mut aliases: Vec<String> = config.aliases.as_ref().and_then(|a| a.items.clone()).unwrap_or_default();
    aliases.sort();
    out.insert("aliases", aliases.join(", "));
    out.insert("enabled", config.enabled.to_string());
    out.insert("default root object", config.default_root_object.clone().unwrap_or_default());
    out.insert("http version", config.http_version.as_ref().map(|v| v.as_str().to_string()).unwrap_or_default());
    out.insert("ipv6", config.is_ipv6_enabled.unwrap_or(false).to_string());
    let certificate = config.viewer_certificate.as_ref();
    out.insert("certificate", certificate.and_then(|c| c.acm_certificate_arn.clone()).unwrap_or_default());
    out.insert(
        "tls",
        certificate
            .map(|c| {
                format!(
                    "{} {}",
                    c.ssl_support_method.as_ref().map_or("", SslSupportMethod::as_str),
                    c.minimum_protocol_version.as_ref().map_or("", MinimumProtocolVersion::as_str)
                )
            })
            .unwrap_or_default(),
    );
    let origin = config.origins.as_ref().and_then(|o| o.items.iter().find(|o| o.id == ORIGIN_ID));
    out.insert("origin", origin.map(|o| o.domain_name.clone()).unwrap_or_default());
    out.insert("origin access control", origin.and_then(|o| o.origin_access_control_id.clone()).unwrap_or_default());
    let behavior = config.default_cache_behavior.as_ref();
    out.insert("origin of the default behaviour", behavior.map(|b| b.target_origin_id.clone()).unwrap_or_default());
    out.insert("viewer protocol", behavior.map(|b| b.viewer_protocol_policy.as_str().to_string()).unwrap_or_default());
    out.insert("cache policy", behavior.and_then(|b| b.cache_policy_id.clone()).unwrap_or_default());
    out.insert(
        "response headers policy",
        behavior.and_then(|b| b.response_headers_policy_id.clone()).unwrap_or_default(),
    );
    out.insert("compress", behavior.and_then(|b| b.compress).unwrap_or(false).to_string());
    let mut methods: Vec<String> = behavior
        .and_then(|b| b.allowed_methods.as_ref())
        .map(|m| m.items.iter().map(|m| m.as_str().to_string()).collect())
        .unwrap_or_default();
    methods.sort();
    out.insert("methods", methods.join(", "));
    let mut functions: Vec<String> = behavior
        .and_then(|b| b.function_associations.as_ref())
        .and_then(|f| f.items.as_ref())
        .map(|items| items.iter().map(|f| format!("{} {}", f.event_type.as_str(), f.function_arn)).collect())
        .unwrap_or_default();
    functions.sort();
    out.insert("functions", functions.join(", "));
    let mut errors: Vec<String> = config
        .custom_error_responses
        .as_ref()
        .and_then(|e| e.items.as_ref())
        .map(|items| {
            items
                .iter()
                .filter(|e| matches!(e.error_code, 403 | 404))
                .map(|e| {
                    format!(
                        "{} → {} ({})",
                        e.error_code,
                        e.response_page_path.as_deref().unwrap_or(""),
                        e.response_code.as_deref().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    errors.sort();
    out.insert("error pages", errors.join(", "));
    out
}

/// One owned setting that differs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The setting.
    pub setting: String,
    /// What it is now.
    pub current: String,
    /// What skiff will make it.
    pub desired: String,
}

/// The owned settings that differ between two maps of settings.
pub fn diff(current: &BTreeMap<&'static str, String>, desired: &BTreeMap<&'static str, String>) -> Vec<Change> {
    desired
        .iter()
        .filter(|(key, value)| current.get(*key) != Some(*value))
        .map(|(key, value)| Change {
            setting: (*key).to_string(),
            current: current.get(key).cloned().unwrap_or_default(),
            desired: value.clone(),
        })
        .collect()
}

/// The live configuration with skiff's settings put back; everything else (logging, WAF,
/// price class, other origins, behaviours and error pages) is kept.
pub fn merge(mut live: DistributionConfig, desired: &DistributionConfig) -> DistributionConfig {
    live.aliases.clone_from(&desired.aliases);
    live.enabled = desired.enabled;
    live.default_root_object.clone_from(&desired.default_root_object);
    live.http_version.clone_from(&desired.http_version);
    live.is_ipv6_enabled = desired.is_ipv6_enabled;
    live.viewer_certificate.clone_from(&desired.viewer_certificate);
    live.default_cache_behavior.clone_from(&desired.default_cache_behavior);
    let ours = desired.origins.as_ref().map(|o| o.items.clone()).unwrap_or_default();
    let mut origins: Vec<Origin> =
        live.origins.take().map(|o| o.items).unwrap_or_default().into_iter().filter(|o| o.id != ORIGIN_ID).collect();
    origins.extend(ours);
    live.origins = Origins::builder().quantity(len(&origins)).set_items(Some(origins)).build().ok();
    let ours = desired.custom_error_responses.as_ref().and_then(|e| e.items.clone()).unwrap_or_default();
    let mut errors: Vec<CustomErrorResponse> = live
        .custom_error_responses
        .take()
        .and_then(|e| e.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !matches!(e.error_code, 403 | 404))
        .collect();
    errors.extend(ours);
    live.custom_error_responses =
        CustomErrorResponses::builder().quantity(len(&errors)).set_items(Some(errors)).build().ok();
    live
}

/// A distribution as skiff sees it.
#[derive(Debug, Clone)]
pub struct Live {
    /// Its id.
    pub id: String,
    /// Its ARN (the bucket policy names it).
    pub arn: String,
    /// `dxxxx.cloudfront.net`.
    pub domain: String,
    /// `InProgress` or `Deployed`.
    pub status: String,
    /// Its configuration.
    pub config: DistributionConfig,
    /// The ETag an update must send.
    pub etag: String,
}

/// Get a distribution by id; `None` when there is no such distribution.
pub async fn get(client: &aws_sdk_cloudfront::Client, id: &str) -> Result<Option<Live>> {
    let got = match client.get_distribution().id(id).send().await {
        Ok(got) => got,
        Err(e) if crate::aws::code(&e).as_deref() == Some("NoSuchDistribution") => return Ok(None),
        Err(e) => return Err(call_error("cloudfront:GetDistribution", &format!("distribution {id}"), &e)),
    };
    let distribution = got.distribution().ok_or_else(|| anyhow!("CloudFront returned no distribution {id}"))?;
    let config = distribution
        .distribution_config()
        .cloned()
        .ok_or_else(|| anyhow!("CloudFront returned distribution {id} without its configuration"))?;
    Ok(Some(Live {
        id: distribution.id().to_string(),
        arn: distribution.arn().to_string(),
        domain: distribution.domain_name().to_string(),
        status: distribution.status().to_string(),
        config,
        etag: got.e_tag().unwrap_or_default().to_string(),
    }))
}

/// Find the distribution tagged `skiff:site=<bucket>` (looking only at distributions with
/// skiff's comment or one of the site's names, so a big account costs few calls).
pub async fn find(client: &aws_sdk_cloudfront::Client, desired: &Desired) -> Result<Option<Live>> {
    let comment = desired.comment();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .list_distributions()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("cloudfront:ListDistributions", "distributions", &e))?;
        let Some(list) = page.distribution_list() else { return Ok(None) };
        for summary in list.items() {
            let aliases = summary.aliases().and_then(|a| a.items.as_ref()).cloned().unwrap_or_default();
            if summary.comment() != comment && !aliases.iter().any(|a| desired.aliases.contains(a)) {
                continue;
            }
            let tags = client.list_tags_for_resource().resource(summary.arn()).send().await.map_err(|e| {
                call_error("cloudfront:ListTagsForResource", &format!("distribution {}", summary.id()), &e)
            })?;
            let tagged = tags.tags().and_then(|t| t.items.as_ref()).is_some_and(|items| {
                items.iter().any(|t| t.key == crate::aws::TAG && t.value.as_deref() == Some(&desired.bucket))
            });
            if tagged {
                return get(client, summary.id()).await;
            }
        }
        marker = list.next_marker().map(str::to_string).filter(|_| list.is_truncated());
        if marker.is_none() {
            return Ok(None);
        }
    }
}

/// Which distribution already holds one of `aliases` (for a CNAMEAlreadyExists error).
pub async fn alias_holder(client: &aws_sdk_cloudfront::Client, aliases: &[String]) -> Option<(String, String)> {
    let mut marker: Option<String> = None;
    loop {
        let page = client.list_distributions().set_marker(marker.clone()).send().await.ok()?;
        let list = page.distribution_list()?;
        for summary in list.items() {
            let held = summary.aliases().and_then(|a| a.items.as_ref()).cloned().unwrap_or_default();
            if let Some(name) = held.iter().find(|a| aliases.contains(a)) {
                return Some((summary.id().to_string(), name.clone()));
            }
        }
        marker = list.next_marker().map(str::to_string).filter(|_| list.is_truncated());
        marker.as_ref()?;
    }
}

/// Create the distribution, tagged for the site.
pub async fn create(client: &aws_sdk_cloudfront::Client, config: DistributionConfig, bucket: &str) -> Result<Live> {
    let aliases = config.aliases.as_ref().and_then(|a| a.items.clone()).unwrap_or_default();
    let tags = Tags::builder().items(Tag::builder().key(crate::aws::TAG).value(bucket).build()?).build();
    let with_tags =
        aws_sdk_cloudfront::types::DistributionConfigWithTags::builder().distribution_config(config).tags(tags).build();
    let created = match client.create_distribution_with_tags().distribution_config_with_tags(with_tags).send().await {
        Ok(created) => created,
        Err(e) if crate::aws::code(&e).as_deref() == Some("CNAMEAlreadyExists") => {
            let holder = alias_holder(client, &aliases).await;
            return Err(match holder {
                Some((id, name)) => anyhow!(
                    "`{name}` is already an alternate domain name of distribution {id}\nhint: remove it from that distribution (or delete the distribution), then re-run `skiff provision`"
                ),
                None => anyhow!(
                    "one of {} is already an alternate domain name of another distribution, possibly in another AWS account\nhint: remove it there, then re-run `skiff provision`",
                    aliases.join(", ")
                ),
            });
        }
        Err(e) if crate::aws::code(&e).as_deref() == Some("DistributionAlreadyExists") => {
            return Err(AlreadyExists.into());
        }
        Err(e) => {
            return Err(call_error("cloudfront:CreateDistribution", &format!("the distribution for {bucket}"), &e));
        }
    };
    let distribution = created.distribution().ok_or_else(|| anyhow!("CloudFront returned no distribution"))?;
    Ok(Live {
        id: distribution.id().to_string(),
        arn: distribution.arn().to_string(),
        domain: distribution.domain_name().to_string(),
        status: distribution.status().to_string(),
        config: distribution.distribution_config().cloned().ok_or_else(|| anyhow!("no configuration returned"))?,
        etag: created.e_tag().unwrap_or_default().to_string(),
    })
}

/// Put skiff's settings back into a live distribution (with its ETag, so a concurrent edit
/// is not overwritten).
pub async fn update(client: &aws_sdk_cloudfront::Client, live: &Live, desired: &DistributionConfig) -> Result<()> {
    let config = merge(live.config.clone(), desired);
    client
        .update_distribution()
        .id(&live.id)
        .if_match(&live.etag)
        .distribution_config(config)
        .send()
        .await
        .map_err(|e| call_error("cloudfront:UpdateDistribution", &format!("distribution {}", live.id), &e))?;
    Ok(())
}

/// The OAC's name for a site.
pub fn oac_name(bucket: &str) -> String {
    crate::aws::resource_name(bucket)
}

/// The id of the site's OAC, by id or else by name; with whether its settings are right.
pub async fn find_oac(
    client: &aws_sdk_cloudfront::Client,
    id: Option<&str>,
    name: &str,
) -> Result<Option<(String, bool)>> {
    let right = |c: &OriginAccessControlConfig| {
        c.signing_protocol == OriginAccessControlSigningProtocols::Sigv4
            && c.signing_behavior == OriginAccessControlSigningBehaviors::Always
            && c.origin_access_control_origin_type == OriginAccessControlOriginTypes::S3
    };
    if let Some(id) = id {
        match client.get_origin_access_control().id(id).send().await {
            Ok(got) => {
                if let Some(config) = got.origin_access_control().and_then(|o| o.origin_access_control_config()) {
                    return Ok(Some((id.to_string(), right(config))));
                }
            }
            Err(e) if crate::aws::code(&e).as_deref() == Some("NoSuchOriginAccessControl") => {}
            Err(e) => {
                return Err(call_error(
                    "cloudfront:GetOriginAccessControl",
                    &format!("origin access control {id}"),
                    &e,
                ));
            }
        }
    }
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .list_origin_access_controls()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("cloudfront:ListOriginAccessControls", "origin access controls", &e))?;
        let Some(list) = page.origin_access_control_list() else { return Ok(None) };
        for summary in list.items() {
            if summary.name() == name {
                let fine = summary.signing_protocol() == &OriginAccessControlSigningProtocols::Sigv4
                    && summary.signing_behavior() == &OriginAccessControlSigningBehaviors::Always
                    && summary.origin_access_control_origin_type() == &OriginAccessControlOriginTypes::S3;
                return Ok(Some((summary.id().to_string(), fine)));
            }
        }
        marker = list.next_marker().map(str::to_string).filter(|_| list.is_truncated());
        if marker.is_none() {
            return Ok(None);
        }
    }
}

/// The OAC configuration skiff wants: sign every request with SigV4.
fn oac_config(name: &str, bucket: &str) -> Result<OriginAccessControlConfig> {
    Ok(OriginAccessControlConfig::builder()
        .name(name)
        .description(format!("skiff: CloudFront reads bucket {bucket}"))
        .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
        .signing_behavior(OriginAccessControlSigningBehaviors::Always)
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
        .build()?)
}

/// Create the OAC.
pub async fn create_oac(client: &aws_sdk_cloudfront::Client, name: &str, bucket: &str) -> Result<String> {
    let created = client
        .create_origin_access_control()
        .origin_access_control_config(oac_config(name, bucket)?)
        .send()
        .await
        .map_err(|e| {
            call_error("cloudfront:CreateOriginAccessControl", &format!("origin access control `{name}`"), &e)
        })?;
    created
        .origin_access_control()
        .map(|o| o.id().to_string())
        .ok_or_else(|| anyhow!("CloudFront returned no origin access control"))
}

/// Put the OAC's settings back.
pub async fn repair_oac(client: &aws_sdk_cloudfront::Client, id: &str, name: &str, bucket: &str) -> Result<()> {
    let got = client
        .get_origin_access_control()
        .id(id)
        .send()
        .await
        .map_err(|e| call_error("cloudfront:GetOriginAccessControl", &format!("origin access control {id}"), &e))?;
    client
        .update_origin_access_control()
        .id(id)
        .if_match(got.e_tag().unwrap_or_default())
        .origin_access_control_config(oac_config(name, bucket)?)
        .send()
        .await
        .map_err(|e| call_error("cloudfront:UpdateOriginAccessControl", &format!("origin access control {id}"), &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired {
            bucket: "example-site".into(),
            region: "eu-west-1".into(),
            aliases: vec!["www.example.com".into(), "example.com".into(), "*.preview.example.com".into()],
            certificate_arn: Some("arn:cert".into()),
            function_arn: Some("arn:function".into()),
            viewer_response: true,
            oac_id: Some("OAC1".into()),
        }
    }

    #[test]
    fn the_desired_config_has_every_owned_setting() {
        let config = desired().config("ref-1").unwrap();
        let settings = settings(&config);
        assert_eq!(settings["aliases"], "*.preview.example.com, example.com, www.example.com");
        assert_eq!(settings["tls"], "sni-only TLSv1.2_2021");
        assert_eq!(settings["http version"], "http2and3");
        assert_eq!(settings["ipv6"], "true");
        assert_eq!(settings["viewer protocol"], "redirect-to-https");
        assert_eq!(settings["cache policy"], CACHING_OPTIMIZED);
        assert_eq!(settings["response headers policy"], SECURITY_HEADERS);
        assert_eq!(settings["origin"], "example-site.s3.eu-west-1.amazonaws.com");
        assert_eq!(settings["origin access control"], "OAC1");
        assert_eq!(settings["functions"], "viewer-request arn:function, viewer-response arn:function");
        assert_eq!(settings["error pages"], "403 → /_skiff/404.html (404), 404 → /_skiff/404.html (404)");
        assert_eq!(settings["default root object"], "index.html");
        assert_eq!(config.caller_reference, "ref-1");
    }

    #[test]
    fn no_previews_means_no_viewer_response_function() {
        let config = Desired { viewer_response: false, ..desired() }.config("r").unwrap();
        assert_eq!(settings(&config)["functions"], "viewer-request arn:function");
    }

    #[test]
    fn merge_restores_owned_settings_and_keeps_the_rest() {
        let want = desired().config("ref").unwrap();
        let mut live = want.clone();
        live.aliases = Some(Aliases::builder().quantity(1).items("example.com").build().unwrap());
        live.viewer_certificate.as_mut().unwrap().minimum_protocol_version = Some(MinimumProtocolVersion::TlSv12016);
        live.price_class = Some(PriceClass::PriceClassAll);
        live.web_acl_id = Some("waf".into());
        let extra = Origin::builder().id("api").domain_name("api.example.com").build().unwrap();
        live.origins.as_mut().unwrap().items.push(extra);
        live.origins.as_mut().unwrap().quantity = 2;
        let changes = diff(&settings(&live), &settings(&want));
        let names: Vec<&str> = changes.iter().map(|c| c.setting.as_str()).collect();
        assert_eq!(names, ["aliases", "tls"]);
        assert_eq!(changes[1].current, "sni-only TLSv1_2016");
        let merged = merge(live, &want);
        assert!(diff(&settings(&merged), &settings(&want)).is_empty());
        assert_eq!(merged.price_class, Some(PriceClass::PriceClassAll));
        assert_eq!(merged.web_acl_id.as_deref(), Some("waf"));
        assert_eq!(merged.origins.as_ref().unwrap().quantity, 2);
        assert_eq!(merged.caller_reference, "ref");
    }

    #[test]
    fn unknown_resources_show_as_changes() {
        let want = Desired { certificate_arn: None, ..desired() }.config("r").unwrap();
        let live = desired().config("r").unwrap();
        let changes = diff(&settings(&live), &settings(&want));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].desired, NEW);
    }
}
