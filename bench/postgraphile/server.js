// The peer of the open-loop read benchmark (issue 19): what a team would pick instead of
// writing resolvers, a GraphQL layer PostGraphile generates over the same read-model
// tables, with the same row-level security role (`scrm_app`) and tenant setting
// (`app.tenant_id`) our server uses, verifying the same tokens.
//
//   (cd bench/postgraphile && npm ci)
//   psql "$DATABASE_URL" -f bench/postgraphile/peer.sql
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/scrm_bench_api \
//   SCRM_JWT_SECRET=... PORT=18778 node bench/postgraphile/server.js
//
// A token of another tenant finds nothing (row-level security); no token or a bad one
// is refused before any query.
//
// The filtered list uses postgraphile-plugin-connection-filter, the plugin PostGraphile's
// documentation points to for filters beyond equality.
//
// The read models carry no foreign keys (each is rebuilt on its own), so the relations a
// portrait follows are declared as smart tags; the timeline, which our server reads
// from the customer's stream, is a computed column over `events` (peer.sql).
const http = require("http");
const jwt = require("jsonwebtoken");
const { postgraphile } = require("postgraphile");
const { makeJSONPgSmartTagsPlugin } = require("graphile-utils");
const ConnectionFilterPlugin = require("postgraphile-plugin-connection-filter");

const secret = process.env.SCRM_JWT_SECRET;
if (!secret) throw new Error("SCRM_JWT_SECRET is required");

const exposed = [
  "rm_customer",
  "rm_customer_staff",
  "rm_customer_tag",
  "rm_tag",
  "rm_tag_group",
  "rm_customer_group",
  "rm_group_owner",
  "rm_customer_coupon",
  "events",
];
const omit = (name) => (exposed.includes(name) ? {} : { omit: true });
const tags = makeJSONPgSmartTagsPlugin({
  version: 1,
  config: {
    class: {
      rm_customer_staff: {
        tags: {
          foreignKey: [
            "(tenant_id, customer_id) references rm_customer (tenant_id, customer_id)|@fieldName customer|@foreignFieldName staffs",
          ],
        },
      },
      rm_customer_tag: {
        tags: {
          foreignKey: [
            "(tenant_id, customer_id) references rm_customer (tenant_id, customer_id)|@fieldName customer|@foreignFieldName tags",
            "(tenant_id, tag_id) references rm_tag (tenant_id, tag_id)|@fieldName tag",
          ],
        },
      },
      rm_tag: {
        tags: {
          foreignKey: [
            "(tenant_id, group_id) references rm_tag_group (tenant_id, group_id)|@fieldName group",
          ],
        },
      },
      rm_customer_group: {
        tags: {
          foreignKey: [
            "(tenant_id, customer_id) references rm_customer (tenant_id, customer_id)|@fieldName customer|@foreignFieldName groups",
            "(tenant_id, group_id) references rm_group_owner (tenant_id, group_id)|@fieldName group",
          ],
        },
      },
      rm_customer_coupon: {
        tags: {
          foreignKey: [
            "(tenant_id, customer_id) references rm_customer (tenant_id, customer_id)|@fieldName customer|@foreignFieldName coupons",
          ],
        },
      },
    },
  },
});

// Tables outside the portrait are left out of the schema, as a team would.
const hideOthers = (builder) => {
  builder.hook("build", (build) => {
    for (const table of build.pgIntrospectionResultsByKind.class) {
      if (table.namespaceName === "public" && !exposed.includes(table.name)) {
        table.tags.omit = true;
      }
    }
    return build;
  });
};

function claims(req) {
  const header = req.headers.authorization || "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : null;
  if (!token) throw Object.assign(new Error("unauthenticated"), { statusCode: 401 });
  return jwt.verify(token, secret, { algorithms: ["HS256"], audience: "scrm-api", issuer: "scrm" });
}

const handler = postgraphile(process.env.DATABASE_URL, "public", {
  appendPlugins: [tags, hideOthers, ConnectionFilterPlugin],
  // The filtered list follows relations (the guide's customers, their open coupons), as
  // a team using PostGraphile would ask for it instead of writing a function.
  graphileBuildOptions: { connectionFilterRelations: true },
  pgSettings: async (req) => ({
    role: "scrm_app",
    "app.tenant_id": claims(req).tid,
  }),
  disableDefaultMutations: true,
  ignoreRBAC: false,
  disableQueryLog: true,
  graphqlRoute: "/graphql",
  retryOnInitFail: true,
});

http.createServer(handler).listen(Number(process.env.PORT || 18778), "127.0.0.1");
