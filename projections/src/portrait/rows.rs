//! The portrait's tables. Every key starts with the tenant.

use crate::table::table_row;

table_row! {
    /// One customer: identity (or when it was erased), acquisition, stage, purchases,
    /// coupon counts, activity.
    CustomerRow in CUSTOMER = "rm_customer",
    key ["tenant_id", "customer_id"],
    indexes [["tenant_id", "stage", "last_activity_at"], ["tenant_id", "last_activity_at"], ["tenant_id", "first_added_at"]],
    {
        tenant_id: text,
        customer_id: text,
        name: opt_text,
        phone: opt_text,
        erased_at: opt_time,
        first_added_at: opt_time,
        first_staff_id: opt_text,
        add_way: opt_int,
        channel_state: opt_text,
        stage: text,
        purchases: int,
        total_fen: int,
        first_purchase_at: opt_time,
        last_purchase_at: opt_time,
        coupons_issued: int,
        coupons_redeemed: int,
        coupons_expired: int,
        last_activity_at: time,
        version: int,
    }
}

table_row! {
    /// A staff member's relation with the customer, with its own remark. It carries the
    /// customer's stage and last activity too, so a guide's customer list, newest
    /// activity first, is a range of the second index instead of a read of every
    /// customer the guide serves and a sort (issue 19).
    RelationRow in RELATION = "rm_customer_staff",
    key ["tenant_id", "customer_id", "staff_id"],
    indexes [
        ["tenant_id", "staff_id", "customer_id"],
        ["tenant_id", "staff_id", "last_activity_at", "customer_id", "stage"]
    ],
    {
        tenant_id: text,
        customer_id: text,
        staff_id: text,
        added_at: time,
        add_way: int,
        remark: text,
        description: text,
        stage: text,
        last_activity_at: time,
    }
}

table_row! {
    /// A tag one staff member applied (names come from `rm_tag`).
    CustomerTagRow in CUSTOMER_TAG = "rm_customer_tag",
    key ["tenant_id", "customer_id", "staff_id", "tag_id"],
    indexes [["tenant_id", "tag_id", "customer_id"]],
    {
        tenant_id: text,
        customer_id: text,
        staff_id: text,
        tag_id: text,
        tagged_at: time,
    }
}

table_row! {
    CustomerGroupRow in CUSTOMER_GROUP = "rm_customer_group",
    key ["tenant_id", "customer_id", "group_id"],
    indexes [["tenant_id", "group_id"]],
    {
        tenant_id: text,
        customer_id: text,
        group_id: text,
        joined_at: time,
    }
}

table_row! {
    CouponRow in COUPON = "rm_customer_coupon",
    key ["tenant_id", "customer_id", "coupon_id"],
    indexes [
        ["tenant_id", "campaign_id"],
        ["tenant_id", "status", "customer_id"],
        ["tenant_id", "status", "expires_at"]
    ],
    {
        tenant_id: text,
        customer_id: text,
        coupon_id: text,
        campaign_id: text,
        value_fen: int,
        issued_at: time,
        expires_at: time,
        status: text,
        closed_at: opt_time,
    }
}

table_row! {
    /// The tag library as it stands: renames and deletions show through joins.
    TagRow in TAG = "rm_tag",
    key ["tenant_id", "tag_id"],
    indexes [],
    {
        tenant_id: text,
        tag_id: text,
        group_id: text,
        name: text,
        deleted: bool,
        // WeCom's display order within the group: the larger comes first.
        sort_order: int,
    }
}

table_row! {
    TagGroupRow in TAG_GROUP = "rm_tag_group",
    key ["tenant_id", "group_id"],
    indexes [],
    {
        tenant_id: text,
        group_id: text,
        name: text,
        deleted: bool,
        // WeCom's display order of the group: the larger comes first.
        sort_order: int,
    }
}

table_row! {
    /// Staff, for listing customers by store.
    StaffRow in STAFF = "rm_staff",
    key ["tenant_id", "staff_id"],
    indexes [["tenant_id", "store_id"]],
    {
        tenant_id: text,
        staff_id: text,
        name: text,
        store_id: text,
        title: text,
        customer_limit: int,
        departed_at: opt_time,
    }
}
