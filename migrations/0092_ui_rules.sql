-- Rule groups created and edited on the Rules page (issue 13, item 6; editor role). Each row
-- is one rule group written in the rule-file format (a `groups:` document with that one
-- group), linted by the same code as `pipewatch rules lint` before it is stored. The
-- lifecycle engine evaluates them beside the groups of `[alerting].rule_files`, which stay
-- read-only on the page; a group's name is unique across both.
CREATE TABLE ui_rule_groups (
    name        text        PRIMARY KEY,
    text        text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
