//! The portrait's tables and their row types.

use chrono::{DateTime, Utc};

use crate::table::{Table, Ty, Val};

pub const CUSTOMER: Table = Table {
    name: "rm_customer",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("customer_id", Ty::Text, false),
        ("name", Ty::Text, true),
        ("phone", Ty::Text, true),
        ("first_added_at", Ty::Time, true),
        ("first_staff_id", Ty::Text, true),
        ("add_way", Ty::Int, true),
        ("channel_state", Ty::Text, true),
        ("stage", Ty::Text, false),
        ("purchases", Ty::Int, false),
        ("total_fen", Ty::Int, false),
        ("first_purchase_at", Ty::Time, true),
        ("last_purchase_at", Ty::Time, true),
        ("coupons_issued", Ty::Int, false),
        ("coupons_redeemed", Ty::Int, false),
        ("coupons_expired", Ty::Int, false),
        ("last_activity_at", Ty::Time, false),
        ("version", Ty::Int, false),
    ],
    key: &["tenant_id", "customer_id"],
    indexes: &[
        &["tenant_id", "stage", "last_activity_at"],
        &["tenant_id", "last_activity_at"],
        &["tenant_id", "first_added_at"],
    ],
};

pub const RELATION: Table = Table {
    name: "rm_customer_staff",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("customer_id", Ty::Text, false),
        ("staff_id", Ty::Text, false),
        ("added_at", Ty::Time, false),
        ("add_way", Ty::Int, false),
        ("remark", Ty::Text, false),
        ("description", Ty::Text, false),
    ],
    key: &["tenant_id", "customer_id", "staff_id"],
    indexes: &[&["tenant_id", "staff_id", "customer_id"]],
};

pub const CUSTOMER_TAG: Table = Table {
    name: "rm_customer_tag",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("customer_id", Ty::Text, false),
        ("staff_id", Ty::Text, false),
        ("tag_id", Ty::Text, false),
        ("tagged_at", Ty::Time, false),
    ],
    key: &["tenant_id", "customer_id", "staff_id", "tag_id"],
    indexes: &[&["tenant_id", "tag_id", "customer_id"]],
};

pub const CUSTOMER_GROUP: Table = Table {
    name: "rm_customer_group",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("customer_id", Ty::Text, false),
        ("group_id", Ty::Text, false),
        ("joined_at", Ty::Time, false),
    ],
    key: &["tenant_id", "customer_id", "group_id"],
    indexes: &[&["tenant_id", "group_id"]],
};

pub const COUPON: Table = Table {
    name: "rm_customer_coupon",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("customer_id", Ty::Text, false),
        ("coupon_id", Ty::Text, false),
        ("campaign_id", Ty::Text, false),
        ("value_fen", Ty::Int, false),
        ("issued_at", Ty::Time, false),
        ("expires_at", Ty::Time, false),
        ("status", Ty::Text, false),
        ("closed_at", Ty::Time, true),
    ],
    key: &["tenant_id", "customer_id", "coupon_id"],
    indexes: &[
        &["tenant_id", "campaign_id"],
        &["tenant_id", "status", "customer_id"],
    ],
};

pub const TAG: Table = Table {
    name: "rm_tag",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("tag_id", Ty::Text, false),
        ("group_id", Ty::Text, false),
        ("name", Ty::Text, false),
        ("deleted", Ty::Bool, false),
    ],
    key: &["tenant_id", "tag_id"],
    indexes: &[],
};

pub const TAG_GROUP: Table = Table {
    name: "rm_tag_group",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("group_id", Ty::Text, false),
        ("name", Ty::Text, false),
        ("deleted", Ty::Bool, false),
    ],
    key: &["tenant_id", "group_id"],
    indexes: &[],
};

pub const STAFF: Table = Table {
    name: "rm_staff",
    columns: &[
        ("tenant_id", Ty::Text, false),
        ("staff_id", Ty::Text, false),
        ("name", Ty::Text, false),
        ("store_id", Ty::Text, false),
        ("title", Ty::Text, false),
        ("customer_limit", Ty::Int, false),
        ("departed_at", Ty::Time, true),
    ],
    key: &["tenant_id", "staff_id"],
    indexes: &[&["tenant_id", "store_id"]],
};

pub const TABLES: &[&Table] = &[
    &CUSTOMER,
    &RELATION,
    &CUSTOMER_TAG,
    &CUSTOMER_GROUP,
    &COUPON,
    &TAG,
    &TAG_GROUP,
    &STAFF,
];

/// Rows go in and out of the database in column order.
pub trait Row {
    fn values(&self) -> Vec<Val>;
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub first_added_at: Option<DateTime<Utc>>,
    pub first_staff_id: Option<String>,
    pub add_way: Option<i64>,
    pub channel_state: Option<String>,
    pub stage: String,
    pub purchases: i64,
    pub total_fen: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub coupons_issued: i64,
    pub coupons_redeemed: i64,
    pub coupons_expired: i64,
    pub last_activity_at: DateTime<Utc>,
    pub version: i64,
}

impl Row for CustomerRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.customer_id.clone()),
            Val::OptText(self.name.clone()),
            Val::OptText(self.phone.clone()),
            Val::OptTime(self.first_added_at),
            Val::OptText(self.first_staff_id.clone()),
            Val::OptInt(self.add_way),
            Val::OptText(self.channel_state.clone()),
            Val::Text(self.stage.clone()),
            Val::Int(self.purchases),
            Val::Int(self.total_fen),
            Val::OptTime(self.first_purchase_at),
            Val::OptTime(self.last_purchase_at),
            Val::Int(self.coupons_issued),
            Val::Int(self.coupons_redeemed),
            Val::Int(self.coupons_expired),
            Val::Time(self.last_activity_at),
            Val::Int(self.version),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RelationRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub staff_id: String,
    pub added_at: DateTime<Utc>,
    pub add_way: i64,
    pub remark: String,
    pub description: String,
}

impl Row for RelationRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.customer_id.clone()),
            Val::Text(self.staff_id.clone()),
            Val::Time(self.added_at),
            Val::Int(self.add_way),
            Val::Text(self.remark.clone()),
            Val::Text(self.description.clone()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerTagRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub staff_id: String,
    pub tag_id: String,
    pub tagged_at: DateTime<Utc>,
}

impl Row for CustomerTagRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.customer_id.clone()),
            Val::Text(self.staff_id.clone()),
            Val::Text(self.tag_id.clone()),
            Val::Time(self.tagged_at),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerGroupRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub group_id: String,
    pub joined_at: DateTime<Utc>,
}

impl Row for CustomerGroupRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.customer_id.clone()),
            Val::Text(self.group_id.clone()),
            Val::Time(self.joined_at),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CouponRow {
    pub tenant_id: String,
    pub customer_id: String,
    pub coupon_id: String,
    pub campaign_id: String,
    pub value_fen: i64,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: String,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Row for CouponRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.customer_id.clone()),
            Val::Text(self.coupon_id.clone()),
            Val::Text(self.campaign_id.clone()),
            Val::Int(self.value_fen),
            Val::Time(self.issued_at),
            Val::Time(self.expires_at),
            Val::Text(self.status.clone()),
            Val::OptTime(self.closed_at),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TagRow {
    pub tenant_id: String,
    pub tag_id: String,
    pub group_id: String,
    pub name: String,
    pub deleted: bool,
}

impl Row for TagRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.tag_id.clone()),
            Val::Text(self.group_id.clone()),
            Val::Text(self.name.clone()),
            Val::Bool(self.deleted),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TagGroupRow {
    pub tenant_id: String,
    pub group_id: String,
    pub name: String,
    pub deleted: bool,
}

impl Row for TagGroupRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.group_id.clone()),
            Val::Text(self.name.clone()),
            Val::Bool(self.deleted),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffRow {
    pub tenant_id: String,
    pub staff_id: String,
    pub name: String,
    pub store_id: String,
    pub title: String,
    pub customer_limit: i64,
    pub departed_at: Option<DateTime<Utc>>,
}

impl Row for StaffRow {
    fn values(&self) -> Vec<Val> {
        vec![
            Val::Text(self.tenant_id.clone()),
            Val::Text(self.staff_id.clone()),
            Val::Text(self.name.clone()),
            Val::Text(self.store_id.clone()),
            Val::Text(self.title.clone()),
            Val::Int(self.customer_limit),
            Val::OptTime(self.departed_at),
        ]
    }
}
