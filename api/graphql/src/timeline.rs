//! A customer's timeline entry, read from the customer's own stream, described for a
//! person: people and things by the names the guide knows them by (campaigns by the
//! names operations gave them), in Chinese unless
//! English is asked for. Personal data in events (a phone number) is never part of the
//! description.

use chrono::{DateTime, Utc};
use domain::customer::{CustomerEvent, HandoverKind, RefusalReason, RemovedBy};
use engine::reads::DisplayNames;

/// One event as a guide reads it.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct TimelineEntry {
    /// Position of the event in the customer's stream (1 is the first).
    pub sequence: i32,
    pub occurred_at: DateTime<Utc>,
    /// The event's type, e.g. `Tagged`.
    pub kind: String,
    /// Who caused it (`staff:<userid>`, `integration:<name>`, `system:<job>`).
    pub actor: Option<String>,
    pub summary: String,
}

/// The language of a timeline's summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, async_graphql::Enum, serde::Serialize)]
pub enum Language {
    /// 简体中文.
    #[default]
    ZhCn,
    En,
}

impl Language {
    /// As the tenant's settings store it.
    pub fn locale(self) -> &'static str {
        match self {
            Self::ZhCn => engine::tenants::ZH_CN,
            Self::En => engine::tenants::EN,
        }
    }

    /// As the tenant's settings store it; anything else reads as Chinese.
    pub(crate) fn of_locale(locale: &str) -> Self {
        if locale == engine::tenants::EN {
            Self::En
        } else {
            Self::ZhCn
        }
    }
}

/// The caller's tenant's language, read at most once per request: a page of customers
/// each with a timeline would otherwise ask the settings once per customer.
#[derive(Debug, Clone, Default)]
pub struct TenantLanguage(std::sync::Arc<tokio::sync::OnceCell<Language>>);

/// The language a timeline is described in: the one asked for, else the tenant's.
pub async fn language(
    ctx: &async_graphql::Context<'_>,
    asked: Option<Language>,
) -> crate::errors::ApiResult<Language> {
    if let Some(language) = asked {
        return Ok(language);
    }
    let read = || async {
        let tenant = &crate::guard::caller(ctx)?.tenant;
        let engine = &crate::state(ctx)?.engine;
        let locale = engine.locales.get(&engine.db, tenant).await?;
        Ok::<_, crate::errors::ApiError>(Language::of_locale(&locale))
    };
    match ctx.data_opt::<TenantLanguage>() {
        Some(cached) => cached.0.get_or_try_init(read).await.copied(),
        None => read().await,
    }
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

fn name<'a>(names: &'a std::collections::HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map_or(id, String::as_str)
}

/// What happened, in a line, with the names in `names` (ids where a name is unknown).
pub fn describe(
    event: &CustomerEvent,
    names: &DisplayNames,
    language: Language,
) -> (DateTime<Utc>, String) {
    let summary = match language {
        Language::ZhCn => chinese(event, names),
        Language::En => english(event, names),
    };
    (event.at(), summary)
}

fn chinese(event: &CustomerEvent, names: &DisplayNames) -> String {
    use CustomerEvent as E;
    let staff = |id: &domain::values::StaffId| name(&names.staff, id.as_str()).to_string();
    let campaign = |id: &domain::values::MessageId| name(&names.campaigns, id.as_str()).to_string();
    match event {
        E::FriendAdded {
            staff: s,
            add_way,
            channel_state,
            ..
        } => match channel_state {
            Some(state) => format!(
                "客户添加了{}（{}，渠道「{state}」）",
                staff(s),
                add_way_zh(add_way.0)
            ),
            None => format!("客户添加了{}（{}）", staff(s), add_way_zh(add_way.0)),
        },
        E::FriendRemoved { staff: s, by, .. } => match by {
            RemovedBy::Staff => format!("{}删除了客户", staff(s)),
            RemovedBy::Customer => format!("客户删除了{}", staff(s)),
            RemovedBy::Transfer => format!("客户已从{}转出", staff(s)),
        },
        E::ProfileUpdated { name: n, .. } if n.is_empty() => "客户资料更新".to_string(),
        E::ProfileUpdated { name: n, .. } => format!("客户资料更新：{n}"),
        E::Tagged { staff: s, tag, .. } => format!(
            "{} 给客户打了标签「{}」",
            staff(s),
            name(&names.tags, tag.as_str())
        ),
        E::Untagged { staff: s, tag, .. } => format!(
            "{} 移除了客户的标签「{}」",
            staff(s),
            name(&names.tags, tag.as_str())
        ),
        E::RemarkChanged {
            staff: s, remark, ..
        } if remark.is_empty() => format!("{} 修改了备注", staff(s)),
        E::RemarkChanged {
            staff: s, remark, ..
        } => format!("{} 将备注改为「{remark}」", staff(s)),
        E::CouponIssued {
            coupon,
            campaign,
            value,
            ..
        } => format!(
            "获得优惠券 {coupon}（活动「{}」，{}）",
            name(&names.coupon_campaigns, campaign.as_str()),
            yuan(value.fen())
        ),
        E::CouponRedeemed { coupon, order, .. } => match order {
            Some(order) => format!("优惠券 {coupon} 已在订单 {order} 核销"),
            None => format!("优惠券 {coupon} 已核销"),
        },
        E::CouponExpired { coupon, .. } => format!("优惠券 {coupon} 已过期"),
        E::JoinedGroup { group, .. } => {
            format!("加入了客户群「{}」", name(&names.groups, group.as_str()))
        }
        E::LeftGroup { group, .. } => {
            format!("退出了客户群「{}」", name(&names.groups, group.as_str()))
        }
        E::PurchaseRecorded {
            order,
            amount,
            store,
            ..
        } => format!("在 {store} 消费 {}（订单 {order}）", yuan(amount.fen())),
        E::MassMessageDelivered {
            message, sender, ..
        } => format!("收到 {} 的群发消息「{}」", staff(sender), campaign(message)),
        E::MomentDelivered { moment, sender, .. } => {
            format!("收到 {} 的朋友圈「{}」", staff(sender), campaign(moment))
        }
        E::CampaignHeldOut { campaign: c, .. } => {
            format!("作为对照组，未收到活动「{}」的消息", campaign(c))
        }
        E::WelcomeMessageSent {
            sender, channel, ..
        } => match channel {
            Some(state) => format!("收到 {} 的欢迎语（渠道「{state}」）", staff(sender)),
            None => format!("收到 {} 的欢迎语", staff(sender)),
        },
        E::HandoverRequested { from, to, kind, .. } => {
            let kind = match kind {
                HandoverKind::OnJob => "在职继承",
                HandoverKind::Resigned => "离职继承",
            };
            format!(
                "{} 的客户转交给 {}（{kind}），等待客户确认",
                staff(from),
                staff(to)
            )
        }
        E::HandoverAccepted { from, to, .. } => {
            format!("客户已从 {} 转交给 {}", staff(from), staff(to))
        }
        E::HandoverRefused {
            from, to, reason, ..
        } => format!(
            "从 {} 到 {} 的转交未成功：{}",
            staff(from),
            staff(to),
            refusal_zh(*reason)
        ),
        E::CustomerErased { reason, .. } => format!("客户的个人信息已删除：{reason}"),
    }
}

fn english(event: &CustomerEvent, names: &DisplayNames) -> String {
    use CustomerEvent as E;
    let staff = |id: &domain::values::StaffId| name(&names.staff, id.as_str()).to_string();
    let campaign = |id: &domain::values::MessageId| name(&names.campaigns, id.as_str()).to_string();
    match event {
        E::FriendAdded {
            staff: s,
            add_way,
            channel_state,
            ..
        } => match channel_state {
            Some(state) => format!("added {} ({}, channel {state})", staff(s), add_way.label()),
            None => format!("added {} ({})", staff(s), add_way.label()),
        },
        E::FriendRemoved { staff: s, by, .. } => {
            format!("relation with {} ended ({by:?})", staff(s))
        }
        E::ProfileUpdated { name: n, .. } if n.is_empty() => "profile updated".to_string(),
        E::ProfileUpdated { name: n, .. } => format!("profile updated: {n}"),
        E::Tagged { staff: s, tag, .. } => format!(
            "{} tagged \"{}\"",
            staff(s),
            name(&names.tags, tag.as_str())
        ),
        E::Untagged { staff: s, tag, .. } => format!(
            "{} removed tag \"{}\"",
            staff(s),
            name(&names.tags, tag.as_str())
        ),
        E::RemarkChanged {
            staff: s, remark, ..
        } if remark.is_empty() => format!("{} changed the remark", staff(s)),
        E::RemarkChanged {
            staff: s, remark, ..
        } => format!("{} set remark \"{remark}\"", staff(s)),
        E::CouponIssued {
            coupon,
            campaign,
            value,
            ..
        } => format!(
            "coupon {coupon} of \"{}\" issued ({})",
            name(&names.coupon_campaigns, campaign.as_str()),
            yuan(value.fen())
        ),
        E::CouponRedeemed { coupon, order, .. } => match order {
            Some(order) => format!("coupon {coupon} redeemed on order {order}"),
            None => format!("coupon {coupon} redeemed"),
        },
        E::CouponExpired { coupon, .. } => format!("coupon {coupon} expired"),
        E::JoinedGroup { group, .. } => {
            format!("joined group \"{}\"", name(&names.groups, group.as_str()))
        }
        E::LeftGroup { group, .. } => {
            format!("left group \"{}\"", name(&names.groups, group.as_str()))
        }
        E::PurchaseRecorded {
            order,
            amount,
            store,
            ..
        } => format!("purchase {order} of {} at {store}", yuan(amount.fen())),
        E::MassMessageDelivered {
            message, sender, ..
        } => format!(
            "mass message \"{}\" from {}",
            campaign(message),
            staff(sender)
        ),
        E::MomentDelivered { moment, sender, .. } => {
            format!("Moment \"{}\" from {}", campaign(moment), staff(sender))
        }
        E::CampaignHeldOut { campaign: c, .. } => {
            format!("held out of campaign \"{}\"", campaign(c))
        }
        E::WelcomeMessageSent {
            sender, channel, ..
        } => match channel {
            Some(state) => format!("welcome message from {} (channel {state})", staff(sender)),
            None => format!("welcome message from {}", staff(sender)),
        },
        E::HandoverRequested { from, to, kind, .. } => format!(
            "handover from {} to {} requested ({kind:?})",
            staff(from),
            staff(to)
        ),
        E::HandoverAccepted { from, to, .. } => {
            format!("handover from {} to {} accepted", staff(from), staff(to))
        }
        E::HandoverRefused {
            from, to, reason, ..
        } => format!(
            "handover from {} to {} refused ({})",
            staff(from),
            staff(to),
            reason.code()
        ),
        E::CustomerErased { reason, .. } => format!("personal data erased: {reason}"),
    }
}

/// WeCom's ways of adding a customer, as its admin console names them.
fn add_way_zh(way: u16) -> &'static str {
    match way {
        1 => "扫描二维码",
        2 => "搜索手机号",
        3 => "名片分享",
        4 => "群聊",
        5 => "手机通讯录",
        6 => "微信联系人",
        7 => "微信好友申请",
        8 => "第三方应用",
        9 => "搜索邮箱",
        10 => "视频号",
        11 => "日程参与人",
        12 => "会议参与人",
        13 => "添加微信好友",
        14 => "智能硬件",
        16 => "客服",
        201 => "内部成员共享",
        202 => "管理员分配",
        _ => "其他方式",
    }
}

fn refusal_zh(reason: RefusalReason) -> String {
    match reason {
        RefusalReason::CustomerRefused => "客户拒绝".into(),
        RefusalReason::CustomerLimitExceeded => "接替成员的客户数已达上限".into(),
        RefusalReason::NoTransferRecord => "企业微信无此转交记录".into(),
        RefusalReason::Rejected { errcode } => format!("企业微信拒绝（错误码 {errcode}）"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::values::{StaffId, TagId};

    fn names() -> DisplayNames {
        let mut names = DisplayNames::default();
        names.staff.insert("guide-0001-02".into(), "王芳".into());
        names.tags.insert("et-style-pearl".into(), "珍珠".into());
        names
    }

    fn tagged() -> CustomerEvent {
        CustomerEvent::Tagged {
            staff: StaffId::parse("guide-0001-02").unwrap(),
            tag: TagId::parse("et-style-pearl").unwrap(),
            at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn given_known_names_when_described_then_a_guide_reads_names_in_chinese() {
        let (_, summary) = describe(&tagged(), &names(), Language::ZhCn);
        assert_eq!(summary, "王芳 给客户打了标签「珍珠」");
    }

    #[test]
    fn given_english_when_described_then_the_same_names_are_used() {
        let (_, summary) = describe(&tagged(), &names(), Language::En);
        assert_eq!(summary, "王芳 tagged \"珍珠\"");
    }

    #[test]
    fn given_unknown_names_when_described_then_the_ids_stand_in() {
        let (_, summary) = describe(&tagged(), &DisplayNames::default(), Language::ZhCn);
        assert_eq!(summary, "guide-0001-02 给客户打了标签「et-style-pearl」");
    }

    #[test]
    fn a_profile_update_never_shows_the_phone() {
        let event = CustomerEvent::ProfileUpdated {
            name: "王女士".into(),
            phone: Some("13800138000".into()),
            at: DateTime::UNIX_EPOCH,
            gender: None,
            avatar: None,
        };
        for language in [Language::ZhCn, Language::En] {
            let (_, summary) = describe(&event, &DisplayNames::default(), language);
            assert!(summary.contains("王女士"));
            assert!(!summary.contains("13800138000"));
        }
    }
}
