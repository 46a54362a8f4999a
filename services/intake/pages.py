"""The public complaint form's pages, in Japanese, Chinese and English: plain HTML, no script."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import urlencode
from uuid import UUID

from shared.reference import reference_of

LANGUAGES = ("ja", "zh", "en")
LANGUAGE_NAMES = {"ja": "日本語", "zh": "中文", "en": "English"}

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "ご意見・苦情の窓口",
        "intro": "いただいたお声は、担当の職員がすぐに受け取り、病院として責任をもって対応します。",
        "department": "部署・病棟",
        "occurred_at": "いつのことですか",
        "summary": "どのようなことがありましたか",
        "summary_hint": "起きたことをそのままお書きください(4000字まで)。",
        "name": "お名前(任意)",
        "contact": "ご連絡先(電話番号またはメールアドレス、任意)",
        "contact_hint": "ご連絡先をいただければ、担当者からお電話またはメールでご連絡します。",
        "send": "送信する",
        "errors": "入力内容をご確認ください",
        "thanks": "お声をお寄せいただき、ありがとうございました",
        "reference": "受付番号",
        "keep": "お問い合わせの際は、この番号をお伝えください。",
        "next": "担当の職員がすでに受け取りました。ご連絡先をいただいた場合は、事実を確認しお詫びするために、"
        "できるだけ早くご連絡いたします。",
        "another": "別のご意見を送る",
        "too_many": "短い時間に多くの送信がありました。しばらくしてから、もう一度お試しください。"
        "お急ぎの場合は、お電話か窓口でお知らせください。",
        "required": "入力してください",
        "too_long": "長すぎます",
        "one_contact": "電話番号かメールアドレスを一つだけお書きください",
        "unknown_department": "一覧から選んでください",
        "bad_time": "日時が正しくありません",
        "future": "未来の日時は選べません",
    },
    "zh": {
        "title": "意见与投诉",
        "intro": "您的意见会立即送到负责的工作人员手中,医院将认真处理。",
        "department": "科室/病区",
        "occurred_at": "发生时间",
        "summary": "发生了什么事",
        "summary_hint": "请如实描述发生的事情(最多4000字)。",
        "name": "姓名(选填)",
        "contact": "联系方式(电话或电子邮件,选填)",
        "contact_hint": "留下联系方式后,负责人员会通过电话或邮件与您联系。",
        "send": "提交",
        "errors": "请检查填写的内容",
        "thanks": "感谢您的反馈",
        "reference": "受理编号",
        "keep": "咨询时请提供此编号。",
        "next": "负责的工作人员已经收到。如您留下了联系方式,我们会尽快与您联系,核实情况并致歉。",
        "another": "提交其他意见",
        "too_many": "短时间内提交次数过多,请稍后再试。如有急事,请致电或到窗口告知。",
        "required": "请填写",
        "too_long": "内容过长",
        "one_contact": "请只填写一个电话号码或电子邮件地址",
        "unknown_department": "请从列表中选择",
        "bad_time": "日期时间不正确",
        "future": "不能选择将来的时间",
    },
    "en": {
        "title": "Comments and complaints",
        "intro": "What you tell us goes straight to the member of staff in charge, and the hospital will "
        "act on it.",
        "department": "Department or ward",
        "occurred_at": "When did it happen?",
        "summary": "What happened?",
        "summary_hint": "Please describe what happened (up to 4,000 characters).",
        "name": "Your name (optional)",
        "contact": "Phone number or e-mail address (optional)",
        "contact_hint": "If you leave a way to reach you, the person in charge will call or write to you.",
        "send": "Send",
        "errors": "Please check what you entered",
        "thanks": "Thank you for telling us",
        "reference": "Reference number",
        "keep": "Please quote this number if you contact us about it.",
        "next": "The member of staff in charge has already received it. If you left a way to reach you, "
        "they will contact you as soon as they can to apologise and confirm the facts.",
        "another": "Send another comment",
        "too_many": "Too many complaints were sent from your connection in a short time. Please try again "
        "later, or tell us by phone or at the desk if it is urgent.",
        "required": "Please fill this in",
        "too_long": "This is too long",
        "one_contact": "Please give one phone number or one e-mail address",
        "unknown_department": "Please choose one from the list",
        "bad_time": "This date and time is not valid",
        "future": "This is in the future",
    },
}

STYLE = """
body{font-family:system-ui,sans-serif;font-size:1.1rem;line-height:1.6;color:#111;background:#fff;margin:0}
main{max-width:40rem;margin:0 auto;padding:1rem}
nav a{margin-right:1rem;color:#0645ad}
label{display:block;font-weight:bold;margin-top:1.2rem}
.hint{color:#333;font-size:.95rem;margin:.2rem 0}
input,select,textarea{width:100%;box-sizing:border-box;font-size:1.1rem;padding:.5rem;
  border:2px solid #444;border-radius:4px}
textarea{min-height:10rem}
button{margin-top:1.5rem;font-size:1.2rem;padding:.7rem 2rem;background:#004f9f;color:#fff;border:0;
  border-radius:4px}
:focus{outline:3px solid #c60;outline-offset:2px}
.error{color:#a00000;font-weight:bold}
.errors{border:3px solid #a00000;padding:.5rem 1rem}
.reference{font-size:1.6rem;font-family:monospace;letter-spacing:.1em;background:#eef;padding:.5rem}
"""


def choose_language(asked: str | None, accept_language: str | None, default: str) -> str:
    """The language asked for by the switch, else the browser's first one offered here, else the default."""
    if asked in LANGUAGES:
        return asked
    offered = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES and quality > 0:
            offered.append((-quality, position, primary))
    return min(offered)[2] if offered else default


def _page(language: str, title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def _switch(language: str, department: str | None) -> str:
    links = []
    for other in LANGUAGES:
        query = urlencode({"lang": other} | ({"department": department} if department else {}))
        current = ' aria-current="page"' if other == language else ""
        links.append(
            f'<a href="/form?{query}" lang="{other}" hreflang="{other}"{current}>{LANGUAGE_NAMES[other]}</a>'
        )
    return f'<nav aria-label="Language / 言語 / 语言">{"".join(links)}</nav>'


def form_page(
    language: str,
    departments: Sequence[str],
    values: Mapping[str, str],
    errors: Mapping[str, str],
    form_id: str,
    max_summary: int,
) -> str:
    """The form, with what was entered and a message by each field that needs another look."""
    text = TEXTS[language]

    def field_error(name: str) -> str:
        return f'<p class="error" id="{name}-error">{escape(errors[name])}</p>' if name in errors else ""

    def described(name: str, hint: bool = False) -> str:
        ids = ([f"{name}-hint"] if hint else []) + ([f"{name}-error"] if name in errors else [])
        invalid = ' aria-invalid="true"' if name in errors else ""
        return (f' aria-describedby="{" ".join(ids)}"' if ids else "") + invalid

    chosen = values.get("department", "")
    options = "".join(
        f'<option value="{escape(name)}"{" selected" if name == chosen else ""}>{escape(name)}</option>'
        for name in departments
    )
    summary_of_errors = (
        f'<div class="errors" role="alert"><h2>{escape(text["errors"])}</h2><ul>'
        + "".join(
            f'<li><a href="#{name}">{escape(text[name])}: {escape(message)}</a></li>'
            for name, message in errors.items()
        )
        + "</ul></div>"
        if errors
        else ""
    )
    body = (
        f"{_switch(language, chosen or None)}<h1>{escape(text['title'])}</h1><p>{escape(text['intro'])}</p>"
        f'{summary_of_errors}<form method="post" action="/form" accept-charset="utf-8">'
        f'<input type="hidden" name="lang" value="{language}">'
        f'<input type="hidden" name="form_id" value="{escape(form_id)}">'
        f'<label for="department">{escape(text["department"])}</label>{field_error("department")}'
        f'<select id="department" name="department" required{described("department")}>{options}</select>'
        f'<label for="occurred_at">{escape(text["occurred_at"])}</label>{field_error("occurred_at")}'
        f'<input type="datetime-local" id="occurred_at" name="occurred_at" required'
        f' value="{escape(values.get("occurred_at", ""))}"{described("occurred_at")}>'
        f'<label for="summary">{escape(text["summary"])}</label>'
        f'<p class="hint" id="summary-hint">{escape(text["summary_hint"])}</p>{field_error("summary")}'
        f'<textarea id="summary" name="summary" required maxlength="{max_summary}"'
        f"{described('summary', True)}>"
        f"{escape(values.get('summary', ''))}</textarea>"
        f'<label for="name">{escape(text["name"])}</label>{field_error("name")}'
        f'<input id="name" name="name" autocomplete="name" maxlength="200"'
        f' value="{escape(values.get("name", ""))}"'
        f"{described('name')}>"
        f'<label for="contact">{escape(text["contact"])}</label>'
        f'<p class="hint" id="contact-hint">{escape(text["contact_hint"])}</p>{field_error("contact")}'
        f'<input id="contact" name="contact" maxlength="200" value="{escape(values.get("contact", ""))}"'
        f"{described('contact', True)}>"
        f'<button type="submit">{escape(text["send"])}</button></form>'
    )
    return _page(language, text["title"], body)


def received_page(language: str, complaint_id: UUID, department: str) -> str:
    """The thanks, with the complaint's reference: what the receipt and the staff quote too."""
    text = TEXTS[language]
    reference = reference_of(complaint_id)
    again = urlencode({"lang": language, "department": department})
    body = (
        f"{_switch(language, department)}<h1>{escape(text['thanks'])}</h1>"
        f'<p>{escape(text["reference"])}:</p><p class="reference" id="reference">{escape(reference)}</p>'
        f"<p>{escape(text['keep'])}</p><p>{escape(text['next'])}</p>"
        f'<p><a href="/form?{again}">{escape(text["another"])}</a></p>'
    )
    return _page(language, text["thanks"], body)


def refused_page(language: str, message: str) -> str:
    text = TEXTS[language]
    return _page(
        language, text["title"], f'<h1>{escape(text["title"])}</h1><p role="alert">{escape(message)}</p>'
    )
