"""The Groups page pages and sorts in DuckDB, and a search shows where each group matched."""

from __future__ import annotations

from dashboard import resources as res


def test_all_iterations_are_paged_and_sorted(open_page, monkeypatch) -> None:
    monkeypatch.setattr(res, "GROUPS_PAGE_SIZE", 7)
    at = open_page("app_pages/groups.py", run="arithmetic")
    first = at.dataframe[0].value
    assert len(first) == 7
    total = int(at.caption[0].value.split(" groups")[0])
    assert total > 7
    at.number_input(key="groups_page").set_value(2).run()
    second = at.dataframe[0].value
    assert len(second) == 7 and set(second["group_id"]).isdisjoint(first["group_id"])
    last_page = -(-total // 7)
    at.number_input(key="groups_page").set_value(last_page).run()
    assert len(at.dataframe[0].value) == total - 7 * (last_page - 1)

    at.number_input(key="groups_page").set_value(1).run()
    at.selectbox(key="groups_sort").set_value("mean_outcome").run()
    at.toggle(key="groups_desc").set_value(True).run()
    table = at.dataframe[0].value
    assert table["mean_outcome"].is_monotonic_decreasing
    assert table["mean_outcome"].iloc[0] == 1.0


def test_search_shows_where_each_group_matched(open_page) -> None:
    at = open_page("app_pages/groups.py", run="agent")
    at.text_input(key="groups_search").set_value("take sword").run()
    table = at.dataframe[0].value
    assert len(table) > 0
    assert table["match"].str.lower().str.contains("take sword").all()
    assert table["matched_in"].str.contains(" step ").all()
    assert (table["n"] == 8).all()  # statistics of whole groups, not of the matching rollouts
