"""Every string of the board report, in Japanese, Chinese and English: one place to translate."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "title": {
        "ja": "苦情から学ぶ：理事会報告",
        "zh": "从投诉中学习：院务会报告",
        "en": "Learning from complaints: board report",
    },
    "window": {"ja": "対象期間", "zh": "统计期间", "en": "Period covered"},
    "start": {"ja": "記録の最初", "zh": "记录开始", "en": "the start of the record"},
    "end": {"ja": "記録の最後", "zh": "记录结束", "en": "the end of the record"},
    "month": {"ja": "月ごと", "zh": "按月", "en": "per month"},
    "quarter": {"ja": "四半期ごと", "zh": "按季度", "en": "per quarter"},
    "complaints": {"ja": "苦情件数", "zh": "投诉件数", "en": "Complaints"},
    "by_domain": {"ja": "領域別の苦情件数", "zh": "按领域的投诉件数", "en": "Complaints by domain"},
    "by_department": {"ja": "部署別の苦情件数", "zh": "按科室的投诉件数", "en": "Complaints by department"},
    "first_response": {
        "ja": "初回対応までの時間（時間）",
        "zh": "首次回应所需时间（小时）",
        "en": "Time to the first response (hours)",
    },
    "median": {"ja": "中央値", "zh": "中位数", "en": "median"},
    "p90": {"ja": "90パーセンタイル", "zh": "第90百分位", "en": "90th percentile"},
    "notices": {"ja": "学習通知の確認状況", "zh": "学习通知的签收情况", "en": "Learning notices: sign-off"},
    "recurring": {
        "ja": "同じ部署で繰り返す苦情（院内の基準値を3期間以上続けて上回る）",
        "zh": "同一科室反复出现的投诉（连续3期以上高于全院基准）",
        "en": "Recurring in one department (above the hospital's baseline 3 or more periods running)",
    },
    "recurring_chart": {
        "ja": "繰り返す苦情：件数と基準値の上限（破線）",
        "zh": "反复出现的投诉：件数与基准上限（虚线）",
        "en": "Recurring causes: complaints, and the baseline's limit (dashed)",
    },
    "above_from": {"ja": "基準値の上限", "zh": "基准上限", "en": "baseline's limit"},
    "above_baseline": {"ja": "基準値を上回った期間", "zh": "高于基准的期间", "en": "Above baseline"},
    "to_date": {"ja": "継続中", "zh": "持续中", "en": "to date"},
    "none": {"ja": "なし", "zh": "无", "en": "none"},
    "department": {"ja": "部署", "zh": "科室", "en": "Department"},
    "category": {"ja": "分類", "zh": "类别", "en": "Category"},
    "trend": {"ja": "傾向", "zh": "趋势", "en": "Trend"},
    "counts": {"ja": "件数（前半→後半）", "zh": "件数（前半→后半）", "en": "Count (earlier -> later half)"},
    "rising": {"ja": "増加", "zh": "上升", "en": "rising"},
    "falling": {"ja": "減少", "zh": "下降", "en": "falling"},
    "steady": {"ja": "横ばい", "zh": "持平", "en": "steady"},
    "key_figures": {"ja": "主な数値", "zh": "主要数据", "en": "Key figures"},
    "first_response_median": {
        "ja": "初回対応（中央値 / 90%）",
        "zh": "首次回应（中位数 / 90%）",
        "en": "First response (median / p90)",
    },
    "feedback_median": {
        "ja": "結果の説明（中央値 / 90%）",
        "zh": "结果反馈（中位数 / 90%）",
        "en": "Feedback (median / p90)",
    },
    "harassment": {
        "ja": "ハラスメント判定（件数 / 該当）",
        "zh": "骚扰评估（件数 / 认定）",
        "en": "Harassment assessments (count / judged)",
    },
    "satisfaction": {
        "ja": "回訪の満足度（平均, 5段階）",
        "zh": "回访满意度（平均，5分制）",
        "en": "Callback satisfaction (mean of 5)",
    },
    "safety_events": {
        "ja": "インシデント報告 / 苦情との連結",
        "zh": "不良事件报告 / 与投诉关联",
        "en": "Safety-event reports / complaints linked",
    },
    "notice": {"ja": "通知", "zh": "通知", "en": "Notice"},
    "by": {
        "ja": "回答者（または既読者）",
        "zh": "答复人（或已读人）",
        "en": "Answered (or read) by",
    },
    "separator": {"ja": "、", "zh": "、", "en": ", "},
    "status": {"ja": "状況", "zh": "状态", "en": "Status"},
    "before_after": {
        "ja": "同分類の苦情（前→後）",
        "zh": "同类投诉（前→后）",
        "en": "Its complaints before → after",
    },
    "fell": {"ja": "減少", "zh": "减少", "en": "fell"},
    "rose": {"ja": "増加", "zh": "增加", "en": "rose"},
    "unchanged": {"ja": "変化なし", "zh": "无变化", "en": "unchanged"},
    "too_early": {"ja": "比較にはまだ早い", "zh": "尚不能比较", "en": "too early to compare"},
    "action_complete": {"ja": "対策完了", "zh": "已完成整改", "en": "action complete"},
    "not_applicable": {"ja": "該当なし", "zh": "不适用", "en": "not applicable"},
    "overdue": {"ja": "期限超過", "zh": "逾期", "en": "overdue"},
    "read": {"ja": "既読・未回答", "zh": "已读未答", "en": "read, no answer"},
    "unread": {"ja": "未読", "zh": "未读", "en": "not read"},
    "caution": {
        "ja": "前後の件数は並べて示すのみで、通知の効果を証明するものではありません。",
        "zh": "前后件数仅并列展示，不证明通知产生了效果。",
        "en": "Counts before and after are shown side by side; they do not prove the notice's effect.",
    },
    "kappa": {
        "ja": "二重コーディングの一致度（Cohenのκ, 有無）",
        "zh": "双人编码一致性（Cohen κ，有无）",
        "en": "Agreement of blind codings (Cohen's kappa, present/absent)",
    },
    "pairs": {"ja": "組数", "zh": "对数", "en": "pairs"},
    "clinical": {"ja": "臨床", "zh": "临床", "en": "clinical"},
    "management": {"ja": "管理", "zh": "管理", "en": "management"},
    "relationships": {"ja": "関係", "zh": "关系", "en": "relationships"},
    "not_coded": {"ja": "未分類", "zh": "未编码", "en": "not coded"},
    "quality": {"ja": "医療の質", "zh": "医疗质量", "en": "quality"},
    "safety": {"ja": "安全", "zh": "安全", "en": "safety"},
    "environment": {"ja": "環境", "zh": "环境", "en": "environment"},
    "institutional_processes": {"ja": "組織の手続き", "zh": "机构流程", "en": "institutional processes"},
    "listening": {"ja": "傾聴", "zh": "倾听", "en": "listening"},
    "communication": {"ja": "コミュニケーション", "zh": "沟通", "en": "communication"},
    "respect_and_patient_rights": {
        "ja": "尊重と患者の権利",
        "zh": "尊重与患者权利",
        "en": "respect and patient rights",
    },
}


def words(language: str) -> dict[str, str]:
    """The board report's strings in one language; a key it lacks falls back to itself."""
    return {key: texts[language] for key, texts in TEXT.items()}
