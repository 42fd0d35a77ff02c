"""`hub staff`: staff accounts of the console (the first administrator, before anyone can sign in)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hub.cli.common import console, err, with_store

app = typer.Typer(no_args_is_help=True, help="Staff accounts of the staff console (hub console).")


@app.command("create")
def staff_create(
    username: Annotated[str, typer.Argument(help="sign-in name (ASCII, up to 40 characters)")],
    department: Annotated[str, typer.Option(help="department slug, e.g. pr (source /departments/NAME)")],
    role: Annotated[str, typer.Option(help="writer (작성자), approver (결재권자), operator (운영자), admin (관리자)")]
    = "admin",
    name: Annotated[str | None, typer.Option(help="name shown in the console (default: the sign-in name)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin "
                                                                          "(scripts); else it is asked twice")]
    = False,
) -> None:
    """Create a staff member (the first administrator: `hub staff create admin --department pr`). The store keeps
    an argon2id hash of the password, never the password."""
    import sys

    from hub.core.apikeys import check_department
    from hub.core.staff import ROLES, hash_password, password_problem
    from hub.core.time import utcnow
    from hub.store import staff as db

    if role not in ROLES:
        raise typer.BadParameter(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if not username or len(username) > 40 or not username.isascii() or not username.isprintable():
        raise typer.BadParameter("the sign-in name must be printable ASCII, 1-40 characters")
    try:
        check_department(department)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():  # a script, or nothing to type on: asking would wait or end as "interrupted"
        raise typer.BadParameter("no terminal to ask the password on: pipe it in with --password-stdin")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if problem := password_problem(password):
        raise typer.BadParameter(problem)

    async def create(store: Any) -> object:
        if await db.username_taken(store, username):
            return None
        return await db.create_staff(store, username=username, display_name=name or username,
                                     department=department, role=role,
                                     password_hash=hash_password(password), now=utcnow())

    if with_store(create) is None:
        err.print(f"[red]a staff member {username!r} already exists[/]")
        raise typer.Exit(1)
    console.print(f"created {username} ({ROLES[role]}, {department}): sign in at `hub console`")
