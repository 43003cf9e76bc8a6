//! The corp's directory (通讯录): its departments and the staff in them, as
//! `department/list` and `user/list` answer. The directory sync and the `change_contact`
//! notices bring the engine's staff in line with it (docs/adr/0014-wecom-directory.md).

use serde::{Deserialize, Serialize};

use super::{ClientError, TenantApi};

/// One department of `department/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// The root department's parent is 0.
    #[serde(default)]
    pub parentid: i64,
    #[serde(default)]
    pub order: i64,
}

/// One member of staff of `user/list`. Fields the engine does not use are not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub userid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub department: Vec<i64>,
    /// Absent in older answers: then the first of `department`.
    #[serde(default)]
    pub main_department: Option<i64>,
    #[serde(default)]
    pub position: String,
    /// 1 active, 2 disabled, 4 not activated, 5 exited.
    #[serde(default = "active")]
    pub status: i64,
    #[serde(default)]
    pub gender: String,
    #[serde(default)]
    pub avatar: String,
}

fn active() -> i64 {
    DirectoryUser::ACTIVE
}

impl DirectoryUser {
    pub const ACTIVE: i64 = 1;
    pub const DISABLED: i64 = 2;
    pub const NOT_ACTIVATED: i64 = 4;
    pub const EXITED: i64 = 5;

    /// The department whose store the staff member works in.
    pub fn main_department(&self) -> Option<i64> {
        self.main_department
            .filter(|d| *d != 0)
            .or_else(|| self.department.first().copied())
    }
}

#[derive(Deserialize)]
struct DepartmentAnswer {
    #[serde(default)]
    department: Vec<Department>,
}

#[derive(Deserialize)]
struct UserAnswer {
    #[serde(default)]
    userlist: Vec<DirectoryUser>,
}

impl TenantApi<'_> {
    /// `GET /cgi-bin/department/list`: every department, or `id` and those below it.
    pub async fn departments(&self, id: Option<i64>) -> Result<Vec<Department>, ClientError> {
        let id = id.map(|id| id.to_string());
        let query: Vec<(&str, &str)> = id.iter().map(|id| ("id", id.as_str())).collect();
        let answer: DepartmentAnswer = self.call("/cgi-bin/department/list", &query, None).await?;
        Ok(answer.department)
    }

    /// `GET /cgi-bin/user/list` with `fetch_child=1`: the staff of `department` and of
    /// every department below it.
    pub async fn users(&self, department: i64) -> Result<Vec<DirectoryUser>, ClientError> {
        let department = department.to_string();
        let answer: UserAnswer = self
            .call(
                "/cgi-bin/user/list",
                &[("department_id", &department), ("fetch_child", "1")],
                None,
            )
            .await?;
        Ok(answer.userlist)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::answer;
    use super::*;

    #[test]
    fn documented_answers_parse() {
        let departments: DepartmentAnswer = answer(json!({
            "errcode": 0, "errmsg": "ok",
            "department": [
                {"id": 2, "name": "广州研发中心", "name_en": "RDGZ", "department_leader": ["zhangsan"],
                 "parentid": 1, "order": 10},
                {"id": 3, "name": "邮箱产品部", "parentid": 2, "order": 40}
            ]
        }))
        .unwrap();
        assert_eq!(departments.department[1].parentid, 2);
        assert_eq!(departments.department[1].name_en, "");
        let users: UserAnswer = answer(json!({
            "errcode": 0, "errmsg": "ok",
            "userlist": [{"userid": "zhangsan", "name": "李四", "department": [1, 2],
                "order": [1, 2], "position": "后台工程师", "mobile": "13800000000", "gender": "1",
                "email": "zhangsan@gzdev.com", "is_leader_in_dept": [1, 0], "avatar": "http://x",
                "status": 1, "main_department": 2, "open_userid": "xxxxxx"},
                {"userid": "lisi", "department": [3]}]
        }))
        .unwrap();
        assert_eq!(users.userlist[0].main_department(), Some(2));
        assert_eq!(users.userlist[0].position, "后台工程师");
        assert_eq!(users.userlist[1].main_department(), Some(3));
        assert_eq!(users.userlist[1].status, DirectoryUser::ACTIVE);
    }
}
