// The operations console: plain JavaScript against the engine's own GraphQL API, no
// build step, no library (docs/adr/0023-console-vanilla-js.md).
//
// Rules kept throughout:
// - Data from the API reaches the DOM only as text (textContent, createTextNode) or as
//   attribute values (setAttribute); never as HTML.
// - The credential lives in sessionStorage (this tab only) and goes out in the
//   Authorization header or the socket's connection_init, never in a URL.
// - A page or button the role may not use is not shown; the API is the wall.
(function () {
  "use strict";

  var body = document.body;
  var ENDPOINT = body.getAttribute("data-endpoint");
  var SOCKET = body.getAttribute("data-socket");
  var CREDENTIAL = "scrm.console.credential";
  var LANG = "scrm.console.lang";
  var SVGNS = "http://www.w3.org/2000/svg";

  var TEXT = {
    zh: {
      title: "SCRM 运营控制台",
      signIn: "登录",
      signOut: "退出",
      credential: "令牌或 API 密钥",
      credentialHint: "粘贴 JWT 令牌或 API 密钥（sk.…）。只保存在本标签页中，关闭即清除。",
      signInFailed: "登录失败：",
      language: "English",
      customers: "客户",
      departures: "离职交接",
      funnel: "漏斗与核销",
      campaigns: "活动效果",
      inbox: "企微消息",
      projections: "投影",
      notForRole: "当前角色无权使用此页面。",
      loading: "加载中…",
      error: "出错：",
      none: "无",
      name: "姓名",
      staffId: "员工 ID",
      store: "门店",
      departedAt: "离职时间",
      customersRemaining: "剩余客户",
      groupsRemaining: "剩余客户群",
      accepted: "已接替",
      waiting: "等待中",
      refused: "被拒绝",
      handover: "开始交接",
      strategy: "分配方式",
      BALANCED: "均衡分配",
      SINGLE: "全部给一人",
      successors: "接替人",
      start: "开始",
      cancel: "取消",
      chooseSuccessor: "请至少选择一位接替人（全部给一人时只选一位）。",
      job: "任务",
      status: "状态",
      progress: "进度",
      outcomes: "结果",
      refusals: "被拒绝的客户",
      customer: "客户",
      code: "原因",
      QUEUED: "排队中",
      RUNNING: "进行中",
      SUCCEEDED: "已完成",
      FAILED: "失败",
      socketClosed: "实时连接已断开。",
      dimension: "维度",
      STORE: "门店",
      STAFF: "员工",
      CHANNEL: "渠道",
      COHORT: "月度队列",
      CAMPAIGN: "活动",
      chart: "图表",
      bars: "柱状图",
      line: "折线图",
      funnelChart: "复购漏斗",
      redemptionChart: "优惠券核销",
      friends: "好友",
      firstPurchase: "首购",
      repurchase: "复购",
      loyal: "忠诚",
      issued: "发放",
      redeemed: "核销",
      expired: "过期",
      noData: "暂无数据。",
      campaignId: "活动任务 ID",
      campaignText: "内容",
      channel: "渠道",
      createdAt: "创建时间",
      sendAt: "发送时间",
      results: "效果",
      MASS_MESSAGE: "群发消息",
      MOMENT: "朋友圈",
      windowDays: "统计天数",
      show: "查看",
      notFound: "未找到。",
      arm: "组",
      reached: "触达组",
      heldOut: "对照组",
      buyers: "购买人数",
      orders: "订单",
      amount: "金额（元）",
      conversionRate: "转化率",
      redemptionRate: "核销率",
      couponRedeemers: "核销人数",
      conversionUplift: "转化提升",
      redemptionUplift: "核销提升",
      noticeStatus: "状态",
      FAILED_N: "失败",
      UNHANDLED: "未处理",
      PENDING: "待处理",
      kind: "类型",
      reason: "原因",
      attempts: "尝试次数",
      receivedAt: "接收时间",
      retryHint: "逐条重试用“重试”按钮；同一状态全部重试，在服务器上运行：",
      retry: "重试",
      retried: "已排队",
      projection: "投影",
      codeVersion: "代码版本",
      storedVersion: "存储版本",
      eventsApplied: "已应用事件",
      eventsBehind: "落后事件",
      secondsBehind: "延迟（秒）",
      stopped: "已停止",
      rebuild: "重建",
      rebuildAll: "全部重建",
      yes: "是",
      no: "否",
      stage: "阶段",
      purchases: "购买次数",
      lastActivity: "最近活动",
      scope: "范围",
      MINE: "我的",
      STORE_SCOPE: "门店",
      signedInAs: "已登录：",
      eta: "预计剩余"
    },
    en: {
      title: "SCRM operations console",
      signIn: "Sign in",
      signOut: "Sign out",
      credential: "Token or API key",
      credentialHint: "Paste a JWT or an API key (sk.…). It is kept in this tab only and gone when the tab closes.",
      signInFailed: "Sign-in failed: ",
      language: "中文",
      customers: "Customers",
      departures: "Departures",
      funnel: "Funnel & coupons",
      campaigns: "Campaigns",
      inbox: "WeCom inbox",
      projections: "Projections",
      notForRole: "Your role cannot use this page.",
      loading: "Loading…",
      error: "Error: ",
      none: "none",
      name: "Name",
      staffId: "Staff id",
      store: "Store",
      departedAt: "Departed",
      customersRemaining: "Customers left",
      groupsRemaining: "Groups left",
      accepted: "Accepted",
      waiting: "Waiting",
      refused: "Refused",
      handover: "Start handover",
      strategy: "Strategy",
      BALANCED: "Balanced",
      SINGLE: "All to one",
      successors: "Successors",
      start: "Start",
      cancel: "Cancel",
      chooseSuccessor: "Choose at least one successor (exactly one for all-to-one).",
      job: "Job",
      status: "Status",
      progress: "Progress",
      outcomes: "Outcomes",
      refusals: "Customers held back",
      customer: "Customer",
      code: "Reason",
      QUEUED: "queued",
      RUNNING: "running",
      SUCCEEDED: "succeeded",
      FAILED: "failed",
      socketClosed: "The live connection closed.",
      dimension: "Dimension",
      STORE: "Store",
      STAFF: "Staff",
      CHANNEL: "Channel",
      COHORT: "Cohort month",
      CAMPAIGN: "Campaign",
      chart: "Chart",
      bars: "Bars",
      line: "Lines",
      funnelChart: "Repurchase funnel",
      redemptionChart: "Coupon redemption",
      friends: "Friends",
      firstPurchase: "First purchase",
      repurchase: "Repurchase",
      loyal: "Loyal",
      issued: "Issued",
      redeemed: "Redeemed",
      expired: "Expired",
      noData: "No data yet.",
      campaignId: "Campaign job id",
      campaignText: "Text",
      channel: "Channel",
      createdAt: "Created",
      sendAt: "Send at",
      results: "Results",
      MASS_MESSAGE: "Mass message",
      MOMENT: "Moment",
      windowDays: "Window (days)",
      show: "Show",
      notFound: "Not found.",
      arm: "Arm",
      reached: "Reached",
      heldOut: "Held out",
      buyers: "Buyers",
      orders: "Orders",
      amount: "Amount (yuan)",
      conversionRate: "Conversion",
      redemptionRate: "Redemption",
      couponRedeemers: "Redeemers",
      conversionUplift: "Conversion uplift",
      redemptionUplift: "Redemption uplift",
      noticeStatus: "Status",
      FAILED_N: "Failed",
      UNHANDLED: "Unhandled",
      PENDING: "Pending",
      kind: "Kind",
      reason: "Reason",
      attempts: "Attempts",
      receivedAt: "Received",
      retryHint: "Retry one notice with its button; all of a status at once, on the server run:",
      retry: "Retry",
      retried: "Queued",
      projection: "Projection",
      codeVersion: "Code version",
      storedVersion: "Stored version",
      eventsApplied: "Events applied",
      eventsBehind: "Events behind",
      secondsBehind: "Lag (s)",
      stopped: "Stopped",
      rebuild: "Rebuild",
      rebuildAll: "Rebuild all",
      yes: "yes",
      no: "no",
      stage: "Stage",
      purchases: "Purchases",
      lastActivity: "Last active",
      scope: "Scope",
      MINE: "Mine",
      STORE_SCOPE: "My stores",
      signedInAs: "Signed in: ",
      eta: "about"
    }
  };

  var OPS = ["operations", "admin"];
  var ANALYSTS = ["analyst", "admin"];
  var EVERYONE = ["guide", "store_manager", "operations", "analyst", "admin"];

  // Who may use what: the API's own rules (docs/api.md), mirrored so that the page does
  // not offer what would be refused.
  var PAGES = [
    { id: "customers", roles: EVERYONE, render: customersPage },
    { id: "departures", roles: OPS, render: departuresPage },
    { id: "funnel", roles: ANALYSTS, render: funnelPage },
    { id: "campaigns", roles: ["operations", "analyst", "admin"], render: campaignsPage },
    { id: "inbox", roles: OPS, render: inboxPage },
    { id: "projections", roles: ANALYSTS, render: projectionsPage }
  ];
  var MAY = { startHandover: OPS, startRebuild: ANALYSTS, retryWecomNotices: OPS };

  var state = {
    lang: readLang(),
    credential: sessionStorage.getItem(CREDENTIAL),
    viewer: null,
    sockets: []
  };

  function readLang() {
    var l = localStorage.getItem(LANG);
    return l === "en" ? "en" : "zh";
  }

  function t(key) {
    var s = TEXT[state.lang][key];
    return s === undefined ? key : s;
  }

  function may(action) {
    return !!state.viewer && MAY[action].indexOf(state.viewer.role) >= 0;
  }

  // --- DOM helpers: data goes in as text or attribute values only ----------------

  function build(node, attrs, children) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) {
        return;
      }
      if (k === "text") {
        node.textContent = String(v);
      } else if (k.indexOf("on") === 0 && typeof v === "function") {
        node.addEventListener(k.slice(2), v);
      } else {
        node.setAttribute(k, v === true ? "" : String(v));
      }
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
      }
    });
    return node;
  }

  function el(tag, attrs, children) {
    return build(document.createElement(tag), attrs, children);
  }

  function svg(tag, attrs, children) {
    return build(document.createElementNS(SVGNS, tag), attrs, children);
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
    return node;
  }

  function table(columns, rows, rowAttrs) {
    return el("table", {}, [
      el("thead", {}, [el("tr", {}, columns.map(function (c) {
        return el("th", { text: t(c.label) });
      }))]),
      el("tbody", {}, rows.map(function (r, n) {
        return el("tr", rowAttrs ? rowAttrs(r) : {}, columns.map(function (c) {
          var v = c.value(r, n);
          return el("td", { "data-col": c.label }, [v === null || v === undefined ? "–" : v]);
        }));
      }))
    ]);
  }

  function errorBox(err) {
    return el("p", { "class": "error", role: "alert", text: t("error") + (err && err.message ? err.message : err) });
  }

  function pct(x) {
    return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%";
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB") : "–";
  }

  function newKey() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) {
      return (x + 256).toString(16).slice(1);
    }).join("");
  }

  // --- the API --------------------------------------------------------------------

  function authorization() {
    return "Bearer " + state.credential;
  }

  function gql(query, variables) {
    return fetch(ENDPOINT, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: authorization()
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (res) {
      return res.text().then(function (text) {
        var json;
        try {
          json = JSON.parse(text);
        } catch (e) {
          throw new Error("HTTP " + res.status + ": " + text.slice(0, 200));
        }
        if (json.errors && json.errors.length) {
          var code = json.errors[0].extensions && json.errors[0].extensions.code;
          if (code === "UNAUTHENTICATED" && state.viewer) {
            signOut();
          }
          throw new Error(json.errors[0].message + (code ? " (" + code + ")" : ""));
        }
        return json.data;
      });
    });
  }

  // All pages of a connection, up to `cap` nodes.
  function all(query, variables, pick, cap) {
    var nodes = [];
    function page(after) {
      var v = Object.assign({}, variables, { first: 100, after: after });
      return gql(query, v).then(function (data) {
        var conn = pick(data);
        nodes = nodes.concat(conn.nodes);
        if (conn.pageInfo.hasNextPage && nodes.length < (cap || 1000)) {
          return page(conn.pageInfo.endCursor);
        }
        return nodes;
      });
    }
    return page(null);
  }

  // --- the frame: header, sign-in, navigation --------------------------------------

  function render() {
    document.documentElement.setAttribute("lang", state.lang === "zh" ? "zh-CN" : "en");
    document.title = t("title");
    var top = clear(document.getElementById("top"));
    var main = clear(document.getElementById("main"));
    closeSockets();
    top.appendChild(el("h1", { text: t("title") }));
    var tools = el("div", { "class": "tools" }, [
      el("button", { type: "button", id: "lang", onclick: switchLang, text: t("language") })
    ]);
    top.appendChild(tools);
    if (!state.viewer) {
      main.appendChild(signInForm());
      return;
    }
    tools.insertBefore(el("span", {
      id: "viewer", "data-role": state.viewer.role,
      text: t("signedInAs") + state.viewer.subject + " (" + state.viewer.role + ")"
    }), tools.firstChild);
    tools.appendChild(el("button", { type: "button", id: "sign-out", onclick: signOut, text: t("signOut") }));
    var allowed = PAGES.filter(function (p) {
      return p.roles.indexOf(state.viewer.role) >= 0;
    });
    var current = location.hash.replace(/^#\/?/, "") || allowed[0].id;
    top.appendChild(el("nav", {}, allowed.map(function (p) {
      return el("a", {
        href: "#/" + p.id, "data-page": p.id,
        "class": p.id === current ? "current" : null, text: t(p.id)
      });
    })));
    var page = allowed.filter(function (p) {
      return p.id === current;
    })[0];
    var section = el("section", { id: "page", "data-page": current });
    main.appendChild(section);
    if (!page) {
      section.appendChild(el("p", { "class": "error", id: "not-for-role", text: t("notForRole") }));
      return;
    }
    section.appendChild(el("h2", { text: t(page.id) }));
    page.render(section);
  }

  function switchLang() {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANG, state.lang);
    render();
  }

  function signInForm() {
    var input = el("input", {
      type: "password", id: "credential", name: "credential", autocomplete: "off",
      spellcheck: "false", required: true
    });
    var message = el("p", { id: "sign-in-error", "class": "error", role: "alert" });
    var form = el("form", { id: "sign-in", onsubmit: function (e) {
      e.preventDefault();
      signIn(input.value.trim(), message);
    } }, [
      el("label", { "for": "credential", text: t("credential") }),
      input,
      el("p", { "class": "hint", text: t("credentialHint") }),
      el("button", { type: "submit", text: t("signIn") }),
      message
    ]);
    return form;
  }

  function signIn(credential, message) {
    state.credential = credential;
    gql("{ viewer { role subject storeIds seesPersonalData } }").then(function (data) {
      sessionStorage.setItem(CREDENTIAL, credential);
      state.viewer = data.viewer;
      render();
    }, function (err) {
      state.credential = null;
      sessionStorage.removeItem(CREDENTIAL);
      if (message) {
        message.textContent = t("signInFailed") + err.message;
      }
    });
  }

  function signOut() {
    sessionStorage.removeItem(CREDENTIAL);
    state.credential = null;
    state.viewer = null;
    if (location.hash) {
      history.replaceState(null, "", location.pathname);
    }
    render();
  }

  // --- jobs, live over graphql-transport-ws ----------------------------------------

  var JOB_FIELDS = "id kind status progressDone progressTotal etaSeconds nextRunAt errorCode " +
    "outcomes { kind status code count }";

  function closeSockets() {
    state.sockets.forEach(function (ws) {
      ws.close();
    });
    state.sockets = [];
  }

  // Shows job `id` in `box` and follows it over the socket until it ends; then calls
  // `done(job)`.
  function watchJob(id, box, done) {
    var bar = el("progress", { max: 1, value: 0 });
    var label = el("span", { "class": "job-label" });
    var outcomes = el("ul", { "class": "outcomes" });
    var note = el("p", { "class": "error", role: "alert" });
    var job = el("div", { "class": "job", "data-job-id": id, "data-status": "QUEUED" }, [
      el("strong", { text: t("job") + " " }), el("code", { text: id }), " ", label, bar, outcomes, note
    ]);
    clear(box).appendChild(job);
    var finished = false;

    function show(j) {
      job.setAttribute("data-status", j.status);
      job.setAttribute("data-done", j.progressDone);
      job.setAttribute("data-total", j.progressTotal);
      bar.setAttribute("max", Math.max(j.progressTotal, 1));
      bar.setAttribute("value", j.progressDone);
      label.textContent = t(j.status) + " · " + j.progressDone + " / " + j.progressTotal +
        (j.etaSeconds !== null && j.etaSeconds !== undefined ? " · " + t("eta") + " " + j.etaSeconds + " s" : "") +
        (j.errorCode ? " · " + j.errorCode : "") +
        (j.nextRunAt ? " · → " + when(j.nextRunAt) : "");
      clear(outcomes);
      j.outcomes.forEach(function (o) {
        outcomes.appendChild(el("li", {
          "data-kind": o.kind, "data-code": o.code, "data-count": o.count,
          text: o.kind + " " + o.code + ": " + o.count
        }));
      });
      if ((j.status === "SUCCEEDED" || j.status === "FAILED") && !finished) {
        finished = true;
        job.classList.add("finished");
        if (done) {
          done(j);
        }
      }
    }

    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + SOCKET, "graphql-transport-ws");
    state.sockets.push(ws);
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: authorization() } }));
    };
    ws.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.type === "connection_ack") {
        ws.send(JSON.stringify({
          id: "job", type: "subscribe",
          payload: {
            query: "subscription($id: ID!) { jobUpdated(id: $id) { " + JOB_FIELDS + " } }",
            variables: { id: id }
          }
        }));
      } else if (msg.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      } else if (msg.type === "next") {
        if (msg.payload.errors) {
          note.textContent = t("error") + msg.payload.errors[0].message;
        } else {
          show(msg.payload.data.jobUpdated);
        }
      } else if (msg.type === "error") {
        note.textContent = t("error") + (msg.payload[0] && msg.payload[0].message);
      } else if (msg.type === "complete") {
        ws.close();
      }
    };
    ws.onclose = function () {
      if (!finished && document.body.contains(job)) {
        note.textContent = t("socketClosed");
      }
    };
  }

  function startJob(mutation, input, box, done) {
    clear(box).appendChild(el("p", { text: t("loading") }));
    return gql("mutation($i: " + mutation.input + "!) { " + mutation.field +
      "(input: $i) { replayed userErrors { field code message } job { id } } }", { i: input })
      .then(function (data) {
        var payload = data[mutation.field];
        if (payload.userErrors.length) {
          clear(box).appendChild(el("p", { "class": "error", role: "alert" },
            [payload.userErrors.map(function (e) {
              return e.code + ": " + e.message;
            }).join("; ")]));
          return;
        }
        watchJob(payload.job.id, box, done);
      }, function (err) {
        clear(box).appendChild(errorBox(err));
      });
  }

  // --- pages ------------------------------------------------------------------------

  // Loads with `load()` into a fresh area of `section` and draws with `draw(area, data)`.
  function loadInto(section, load, draw) {
    var area = el("div", { "class": "area", "data-loading": "true", text: t("loading") });
    section.appendChild(area);
    load().then(function (data) {
      clear(area).removeAttribute("data-loading");
      draw(area, data);
    }, function (err) {
      clear(area).removeAttribute("data-loading");
      area.appendChild(errorBox(err));
    });
    return area;
  }

  function customersPage(section) {
    var role = state.viewer.role;
    var scope = "MINE";
    var area;
    if (role === "guide" || role === "store_manager") {
      var select = el("select", { id: "scope", onchange: function () {
        scope = select.value;
        area.remove();
        area = show();
      } }, [
        el("option", { value: "MINE", text: t("MINE") }),
        el("option", { value: "STORE", text: t("STORE_SCOPE") })
      ]);
      section.appendChild(el("label", {}, [t("scope") + " ", select]));
    }
    function show() {
      return loadInto(section, function () {
        return gql("query($s: CustomerScope!) { customers(first: 100, scope: $s) { nodes { " +
          "id name externalUserId stage purchases lastActivityAt } } }", { s: scope });
      }, function (area, data) {
        var rows = data.customers.nodes;
        area.setAttribute("data-count", rows.length);
        area.appendChild(rows.length ? table([
          { label: "name", value: function (c) { return c.name; } },
          { label: "customer", value: function (c) { return c.externalUserId; } },
          { label: "stage", value: function (c) { return c.stage; } },
          { label: "purchases", value: function (c) { return c.purchases; } },
          { label: "lastActivity", value: function (c) { return when(c.lastActivityAt); } }
        ], rows, function (c) {
          return { "data-customer": c.externalUserId };
        }) : el("p", { text: t("noData") }));
      });
    }
    area = show();
  }

  function departuresPage(section) {
    var jobBox = el("div", { id: "handover-job" });
    var formBox = el("div", { id: "handover-form" });
    var list = el("div");
    section.appendChild(list);
    section.appendChild(formBox);
    section.appendChild(jobBox);
    // The departures again, once a handover has moved their books.
    function reload() {
      clear(list);
      departuresTable(list, formBox, jobBox, reload);
    }
    reload();
  }

  function departuresTable(section, formBox, jobBox, reload) {
    loadInto(section, function () {
      return all("query($first: Int!, $after: String) { departures(first: $first, after: $after) { " +
        "nodes { staffId name storeId storeName departedAt customersRemaining groupsRemaining " +
        "handoversAccepted handoversWaiting handoversRefused } pageInfo { hasNextPage endCursor } } }",
        {}, function (d) { return d.departures; });
    }, function (area, rows) {
      var columns = [
        { label: "name", value: function (d) { return d.name; } },
        { label: "staffId", value: function (d) { return d.staffId; } },
        { label: "store", value: function (d) {
          // The id stays at hand (a filter, a log line names stores by id).
          return el("span", { title: d.storeId, "data-store-id": d.storeId, text: d.storeName });
        } },
        { label: "departedAt", value: function (d) { return when(d.departedAt); } },
        { label: "customersRemaining", value: function (d) { return d.customersRemaining; } },
        { label: "groupsRemaining", value: function (d) { return d.groupsRemaining; } },
        { label: "accepted", value: function (d) { return d.handoversAccepted; } },
        { label: "waiting", value: function (d) { return d.handoversWaiting; } },
        { label: "refused", value: function (d) { return d.handoversRefused; } }
      ];
      if (may("startHandover")) {
        columns.push({ label: "handover", value: function (d) {
          return el("button", {
            type: "button", "class": "handover", "data-staff": d.staffId, text: t("handover"),
            onclick: function () {
              handoverForm(d, formBox, jobBox, reload);
            }
          });
        } });
      }
      area.appendChild(rows.length ? table(columns, rows, function (d) {
        return { "data-staff": d.staffId };
      }) : el("p", { text: t("noData") }));
    });
  }

  function handoverForm(departure, formBox, jobBox, reload) {
    clear(formBox).appendChild(el("p", { text: t("loading") }));
    all("query($first: Int!, $after: String, $f: StaffMemberFilter) { staffMembers(first: $first, " +
      "after: $after, filter: $f) { nodes { staffId name storeId customerCount customerLimit } " +
      "pageInfo { hasNextPage endCursor } } }",
      { f: { departed: false, storeId: departure.storeId } }, function (d) { return d.staffMembers; })
      .then(function (staff) {
        var strategy = el("select", { id: "strategy", name: "strategy" }, ["BALANCED", "SINGLE"].map(function (s) {
          return el("option", { value: s, text: t(s) });
        }));
        var boxes = staff.filter(function (s) {
          return s.staffId !== departure.staffId;
        }).map(function (s) {
          return el("label", { "class": "successor" }, [
            el("input", { type: "checkbox", name: "successor", value: s.staffId }),
            " " + s.name + " (" + s.staffId + ", " + s.customerCount + "/" + s.customerLimit + ")"
          ]);
        });
        var message = el("p", { "class": "error", role: "alert" });
        var form = el("form", { id: "handover", "data-staff": departure.staffId, onsubmit: function (e) {
          e.preventDefault();
          var chosen = Array.prototype.filter.call(form.querySelectorAll("input[name=successor]"), function (b) {
            return b.checked;
          }).map(function (b) {
            return b.value;
          });
          if (!chosen.length || (strategy.value === "SINGLE" && chosen.length !== 1)) {
            message.textContent = t("chooseSuccessor");
            return;
          }
          clear(formBox);
          startJob({ field: "startHandover", input: "StartHandoverInput" }, {
            staffId: departure.staffId,
            successorIds: chosen,
            strategy: strategy.value,
            kind: "RESIGNED",
            idempotencyKey: newKey()
          }, jobBox, function (j) {
            refusals(j, jobBox);
            reload();
          });
        } }, [
          el("h3", { text: t("handover") + ": " + departure.name + " (" + departure.staffId + ")" }),
          el("label", {}, [t("strategy") + " ", strategy]),
          el("fieldset", {}, [el("legend", { text: t("successors") })].concat(boxes)),
          el("button", { type: "submit", id: "start-handover", text: t("start") }),
          " ",
          el("button", { type: "button", text: t("cancel"), onclick: function () { clear(formBox); } }),
          message
        ]);
        clear(formBox).appendChild(form);
      }, function (err) {
        clear(formBox).appendChild(errorBox(err));
      });
  }

  // Codes of a handover's customers that did not (or not yet) move on: everything but
  // the steps of the way and the happy end.
  var MOVING = ["PLANNED", "SCHEDULED", "REQUESTED", "ACCEPTED", "TRANSFERRED"];

  function refusals(job, box) {
    var codes = job.outcomes.filter(function (o) {
      return o.kind === "CUSTOMER" && MOVING.indexOf(o.code) < 0;
    }).map(function (o) {
      return o.code;
    });
    var list = el("div", { id: "refusals", "data-count": 0 }, [el("h3", { text: t("refusals") })]);
    box.appendChild(list);
    if (!codes.length) {
      list.appendChild(el("p", { text: t("none") }));
      return;
    }
    Promise.all(codes.map(function (code) {
      return gql("query($id: ID!, $code: String) { job(id: $id) { handoverItems(first: 100, code: $code) { " +
        "nodes { kind customerId code toStaffId } } } }", { id: job.id, code: code })
        .then(function (d) {
          return d.job.handoverItems.nodes;
        });
    })).then(function (lists) {
      var items = [].concat.apply([], lists).filter(function (i) {
        return i.kind === "CUSTOMER";
      });
      return customers(items.map(function (i) {
        return i.customerId;
      })).then(function (found) {
        list.appendChild(table([
          { label: "name", value: function (i, n) { return found[n] && found[n].name; } },
          { label: "customer", value: function (i, n) { return found[n] ? found[n].externalUserId : i.customerId; } },
          { label: "code", value: function (i) { return i.code; } },
          { label: "successors", value: function (i) { return i.toStaffId; } }
        ], items, function (i) {
          return { "data-customer": i.customerId, "data-code": i.code };
        }));
        list.setAttribute("data-count", items.length);
      });
    }).catch(function (err) {
      list.appendChild(errorBox(err));
    });
  }

  // Customers by id (null for one the caller may not see), asked 15 to a request: the
  // API's limit of aliases.
  function customers(ids) {
    var chunks = [];
    for (var i = 0; i < ids.length; i += 15) {
      chunks.push(ids.slice(i, i + 15));
    }
    return Promise.all(chunks.map(function (chunk) {
      var vars = {};
      var params = chunk.map(function (id, n) {
        vars["c" + n] = id;
        return "$c" + n + ": ID!";
      });
      var fields = chunk.map(function (id, n) {
        return "c" + n + ": customer(id: $c" + n + ") { name externalUserId }";
      });
      return gql("query(" + params.join(", ") + ") { " + fields.join(" ") + " }", vars).then(function (d) {
        return chunk.map(function (id, n) {
          return d["c" + n];
        });
      });
    })).then(function (parts) {
      return [].concat.apply([], parts);
    });
  }

  // --- charts: hand-drawn SVG; every mark carries its numbers as data- attributes ----

  var COLOURS = ["#2f6fb3", "#e07b24", "#3a9a5b", "#b8463c", "#7b5aa6"];

  // lines: [{key, label, values: {series: number}}]; series: [{id, label}].
  function chart(id, kind, series, lines, format) {
    var W = 760, H = 300, left = 48, right = 12, top = 16, bottom = 70;
    var max = 0;
    lines.forEach(function (l) {
      series.forEach(function (s) {
        max = Math.max(max, l.values[s.id]);
      });
    });
    max = max || 1;
    var plotW = W - left - right, plotH = H - top - bottom;
    var y = function (v) {
      return top + plotH - (v / max) * plotH;
    };
    var root = svg("svg", {
      id: id, "class": "chart", "data-kind": kind, viewBox: "0 0 " + W + " " + H,
      role: "img", "aria-label": t(id)
    });
    [0, 0.5, 1].forEach(function (f) {
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(max * f), y2: y(max * f), "class": "grid" }));
      root.appendChild(svg("text", { x: left - 4, y: y(max * f) + 4, "class": "axis", "text-anchor": "end",
        text: format(max * f) }));
    });
    var step = plotW / Math.max(lines.length, 1);
    lines.forEach(function (l, i) {
      var x0 = left + i * step;
      root.appendChild(svg("text", {
        x: x0 + step / 2, y: H - bottom + 14, "class": "axis key", "text-anchor": "end",
        transform: "rotate(-35 " + (x0 + step / 2) + " " + (H - bottom + 14) + ")",
        "data-key": l.key, text: l.label
      }));
    });
    series.forEach(function (s, si) {
      var colour = COLOURS[si % COLOURS.length];
      var points = [];
      lines.forEach(function (l, i) {
        var v = l.values[s.id];
        var x0 = left + i * step;
        var mark = { "data-key": l.key, "data-series": s.id, "data-value": v, fill: colour, "class": "mark" };
        var title = svg("title", { text: l.label + " · " + s.label + ": " + format(v) });
        if (kind === "line") {
          var cx = x0 + step / 2;
          points.push(cx + "," + y(v));
          mark.cx = cx;
          mark.cy = y(v);
          mark.r = 3.5;
          root.appendChild(svg("circle", mark, [title]));
        } else {
          var bw = Math.max((step * 0.8) / series.length, 1);
          mark.x = x0 + step * 0.1 + si * bw;
          mark.y = y(v);
          mark.width = bw;
          mark.height = top + plotH - y(v);
          root.appendChild(svg("rect", mark, [title]));
          if (bw >= 14) {
            root.appendChild(svg("text", { x: mark.x + bw / 2, y: y(v) - 3, "class": "value", "text-anchor": "middle",
              text: format(v) }));
          }
        }
      });
      if (kind === "line" && points.length) {
        root.insertBefore(svg("polyline", { points: points.join(" "), stroke: colour, fill: "none",
          "stroke-width": 2 }), root.firstChild.nextSibling);
      }
    });
    var legend = el("div", { "class": "legend" }, series.map(function (s, si) {
      return el("span", {}, [svg("svg", { width: 12, height: 12, viewBox: "0 0 12 12" },
        [svg("rect", { width: 12, height: 12, fill: COLOURS[si % COLOURS.length] })]), " " + s.label]);
    }));
    return el("figure", {}, [el("figcaption", { text: t(id) }), root, legend]);
  }

  function integer(v) {
    return String(Math.round(v));
  }

  function funnelPage(section) {
    var dims = ["STORE", "STAFF", "CHANNEL", "COHORT", "CAMPAIGN"];
    var dim = el("select", { id: "dimension" }, dims.map(function (d) {
      return el("option", { value: d, text: t(d) });
    }));
    var kind = el("select", { id: "chart-kind" }, ["bars", "line"].map(function (k) {
      return el("option", { value: k, text: t(k) });
    }));
    section.appendChild(el("div", { "class": "controls" }, [
      el("label", {}, [t("dimension") + " ", dim]), " ", el("label", {}, [t("chart") + " ", kind])
    ]));
    var area = null;
    function show() {
      if (area) {
        area.remove();
      }
      var by = dim.value;
      area = loadInto(section, function () {
        var page = "pageInfo { hasNextPage endCursor }";
        var q = "query($by: Dimension!, $first: Int!, $after: String) { ";
        return Promise.all([
          all(q + "funnel(by: $by, first: $first, after: $after) { nodes { key name friends firstPurchase " +
            "repurchase loyal repurchaseRate } " + page + " } }", { by: by }, function (d) { return d.funnel; }),
          all(q + "couponRedemption(by: $by, first: $first, after: $after) { nodes { key issued redeemed " +
            "expired redemptionRate } " + page + " } }", { by: by }, function (d) { return d.couponRedemption; })
        ]);
      }, function (area, data) {
        area.setAttribute("data-dimension", by);
        var stages = ["friends", "firstPurchase", "repurchase", "loyal"].map(function (s) {
          return { id: s, label: t(s) };
        });
        var coupons = ["issued", "redeemed", "expired"].map(function (s) {
          return { id: s, label: t(s) };
        });
        function lines(nodes) {
          return nodes.map(function (n) {
            return { key: n.key, label: n.name ? n.name + " (" + n.key + ")" : n.key, values: n };
          });
        }
        area.appendChild(data[0].length ? chart("funnelChart", kind.value, stages, lines(data[0]), integer)
          : el("p", { text: t("noData") }));
        area.appendChild(data[1].length ? chart("redemptionChart", kind.value, coupons, lines(data[1]), integer)
          : el("p", { text: t("noData") }));
      });
    }
    dim.addEventListener("change", show);
    kind.addEventListener("change", show);
    show();
  }

  function campaignsPage(section) {
    var id = el("input", { id: "campaign-id", type: "text", size: 40, required: true });
    var days = el("input", { id: "window-days", type: "number", min: 1, max: 90, value: 7 });
    var out = el("div", { id: "campaign-results" });
    var form = el("form", { id: "campaign", onsubmit: function (e) {
      e.preventDefault();
      clear(out).appendChild(el("p", { text: t("loading") }));
      gql("query($id: ID!, $w: Int!) { campaignResults(id: $id, windowDays: $w) { text channel windowDays " +
        "conversionUplift redemptionUplift job { status progressDone progressTotal } " +
        "reached { customers buyers orders amountFen conversionRate couponRedeemers redemptionRate } " +
        "heldOut { customers buyers orders amountFen conversionRate couponRedeemers redemptionRate } } }",
        { id: id.value.trim(), w: Number(days.value) || 7 })
        .then(function (d) {
          clear(out);
          var r = d.campaignResults;
          if (!r) {
            out.appendChild(el("p", { id: "campaign-missing", text: t("notFound") }));
            return;
          }
          var arms = [{ arm: "reached", v: r.reached }];
          if (r.heldOut) {
            arms.push({ arm: "heldOut", v: r.heldOut });
          }
          out.appendChild(el("p", { text: t(r.channel) + " · " + r.text + " · " + t(r.job.status) }));
          out.appendChild(el("dl", { "class": "uplift" }, [
            el("dt", { text: t("conversionUplift") }),
            el("dd", { "data-uplift": "conversion", text: pct(r.conversionUplift) }),
            el("dt", { text: t("redemptionUplift") }),
            el("dd", { "data-uplift": "redemption", text: pct(r.redemptionUplift) })
          ]));
          out.appendChild(table([
            { label: "arm", value: function (a) { return t(a.arm); } },
            { label: "customers", value: function (a) { return a.v.customers; } },
            { label: "buyers", value: function (a) { return a.v.buyers; } },
            { label: "orders", value: function (a) { return a.v.orders; } },
            { label: "amount", value: function (a) { return (Number(a.v.amountFen) / 100).toFixed(2); } },
            { label: "conversionRate", value: function (a) { return pct(a.v.conversionRate); } },
            { label: "couponRedeemers", value: function (a) { return a.v.couponRedeemers; } },
            { label: "redemptionRate", value: function (a) { return pct(a.v.redemptionRate); } }
          ], arms, function (a) {
            return { "data-arm": a.arm };
          }));
          out.appendChild(chart("campaigns", "bars", [
            { id: "conversionRate", label: t("conversionRate") },
            { id: "redemptionRate", label: t("redemptionRate") }
          ], arms.map(function (a) {
            return { key: a.arm, label: t(a.arm), values: a.v };
          }), pct));
        }, function (err) {
          clear(out).appendChild(errorBox(err));
        });
    } }, [
      el("label", {}, [t("campaignId") + " ", id]), " ",
      el("label", {}, [t("windowDays") + " ", days]), " ",
      el("button", { type: "submit", text: t("show") })
    ]);
    section.appendChild(form);
    section.appendChild(out);
    // The tenant's campaigns, newest first, under the results so that a pick shows
    // them where the eye is: picking one fills the id the form takes, and the id field
    // stays for a job named elsewhere (a log line, a link).
    loadInto(section, function () {
      return all("query($first: Int!, $after: String) { campaigns(first: $first, after: $after) { nodes { " +
        "id text channel status createdAt sendAt } pageInfo { hasNextPage endCursor } } }", {},
      function (d) { return d.campaigns; }, 200);
    }, function (area, rows) {
      area.setAttribute("id", "campaign-list");
      area.setAttribute("data-count", rows.length);
      area.appendChild(rows.length ? table([
        { label: "createdAt", value: function (c) { return when(c.createdAt); } },
        { label: "campaignText", value: function (c) { return c.text; } },
        { label: "channel", value: function (c) { return t(c.channel); } },
        { label: "status", value: function (c) { return t(c.status); } },
        { label: "sendAt", value: function (c) { return when(c.sendAt); } },
        { label: "results", value: function (c) {
          return el("button", { type: "button", "class": "open-campaign", text: t("show"), onclick: function () {
            var current = area.querySelector("tr.current");
            if (current) {
              current.classList.remove("current");
            }
            this.closest("tr").classList.add("current");
            id.value = c.id;
            form.requestSubmit();
          } });
        } }
      ], rows, function (c) {
        return { "data-campaign-id": c.id };
      }) : el("p", { text: t("noData") }));
    });
  }

  function inboxPage(section) {
    var status = el("select", { id: "notice-status" }, [
      el("option", { value: "FAILED", text: t("FAILED_N") }),
      el("option", { value: "UNHANDLED", text: t("UNHANDLED") }),
      el("option", { value: "PENDING", text: t("PENDING") })
    ]);
    section.appendChild(el("label", {}, [t("noticeStatus") + " ", status]));
    var hint = el("p", { "class": "hint" }, [t("retryHint") + " ", el("code", { id: "retry-command" })]);
    section.appendChild(hint);
    var area = null;
    function show() {
      if (area) {
        area.remove();
      }
      hint.lastChild.textContent = "scrm wecom retry --tenant <tenant> --status " + status.value.toLowerCase();
      if (status.value === "PENDING") {
        hint.setAttribute("hidden", "");
      } else {
        hint.removeAttribute("hidden");
      }
      area = loadInto(section, function () {
        return gql("query($s: WecomNoticeStatus) { wecomNotices(first: 100, status: $s) { nodes { " +
          "dedupKey kind status error attempts receivedAt nextAttemptAt } } }", { s: status.value });
      }, function (area, data) {
        var rows = data.wecomNotices.nodes;
        area.setAttribute("data-count", rows.length);
        area.appendChild(rows.length ? table([
          { label: "receivedAt", value: function (n) { return when(n.receivedAt); } },
          { label: "kind", value: function (n) { return n.kind; } },
          { label: "status", value: function (n) { return n.status; } },
          { label: "reason", value: function (n) { return n.error; } },
          { label: "attempts", value: function (n) { return n.attempts; } }
        ].concat(status.value !== "PENDING" && may("retryWecomNotices") ? [
          { label: "retry", value: retryButton }
        ] : []), rows, function (n) {
          return { "data-dedup-key": n.dedupKey };
        }) : el("p", { text: t("noData") }));
      });
    }
    // Queues one notice again; the row stays, marked, until the list is reloaded, so
    // the operator sees what was asked. A refusal (processed meanwhile, already
    // pending) is shown on the row.
    function retryButton(n) {
      var note = el("span", { "class": "error", role: "alert" });
      var button = el("button", { type: "button", "class": "retry", text: t("retry"), onclick: function () {
        button.disabled = true;
        gql("mutation($i: RetryWecomNoticesInput!) { retryWecomNotices(input: $i) { retried " +
          "userErrors { code message } } }", { i: { dedupKeys: [n.dedupKey], idempotencyKey: newKey() } })
          .then(function (d) {
            var p = d.retryWecomNotices;
            if (p.retried.indexOf(n.dedupKey) >= 0) {
              button.closest("tr").setAttribute("data-retried", "true");
              button.textContent = t("retried");
              return;
            }
            button.disabled = false;
            note.textContent = p.userErrors.map(function (e) {
              return e.code + ": " + e.message;
            }).join("; ");
          }, function (err) {
            button.disabled = false;
            note.textContent = t("error") + (err && err.message ? err.message : err);
          });
      } });
      return el("span", {}, [button, " ", note]);
    }
    status.addEventListener("change", show);
    show();
  }

  function projectionsPage(section) {
    var jobBox = el("div", { id: "rebuild-job" });
    var area = null;
    function rebuild(name) {
      var input = { idempotencyKey: newKey() };
      if (name) {
        input.projection = name;
      }
      startJob({ field: "startRebuild", input: "StartRebuildInput" }, input, jobBox, function () {
        show();
      });
    }
    function show() {
      var fresh = loadInto(section, function () {
        return all("query($first: Int!, $after: String) { projections(first: $first, after: $after) { nodes { " +
          "name codeVersion storedVersion eventsApplied eventsBehind secondsBehind checkpoint stopped " +
          "stoppedReason } pageInfo { hasNextPage endCursor } } }", {}, function (d) { return d.projections; });
      }, function (a, rows) {
        var columns = [
          { label: "projection", value: function (p) { return p.name; } },
          { label: "codeVersion", value: function (p) { return p.codeVersion; } },
          { label: "storedVersion", value: function (p) { return p.storedVersion; } },
          { label: "eventsApplied", value: function (p) { return p.eventsApplied; } },
          { label: "eventsBehind", value: function (p) { return p.eventsBehind; } },
          { label: "secondsBehind", value: function (p) { return p.secondsBehind.toFixed(1); } },
          { label: "stopped", value: function (p) {
            return p.stopped ? t("yes") + (p.stoppedReason ? " (" + p.stoppedReason + ")" : "") : t("no");
          } }
        ];
        if (may("startRebuild")) {
          columns.push({ label: "rebuild", value: function (p) {
            return el("button", { type: "button", "class": "rebuild", "data-projection": p.name, text: t("rebuild"),
              onclick: function () { rebuild(p.name); } });
          } });
        }
        a.appendChild(table(columns, rows, function (p) {
          return { "data-projection": p.name };
        }));
      });
      if (area) {
        section.replaceChild(fresh, area);
      } else {
        section.insertBefore(fresh, jobBox);
      }
      area = fresh;
    }
    if (may("startRebuild")) {
      section.appendChild(el("button", { type: "button", id: "rebuild-all", text: t("rebuildAll"),
        onclick: function () { rebuild(null); } }));
    }
    section.appendChild(jobBox);
    show();
  }

  // --- start ---------------------------------------------------------------------------

  window.addEventListener("hashchange", function () {
    if (state.viewer) {
      render();
    }
  });
  if (state.credential) {
    signIn(state.credential, null);
  }
  render();
})();
