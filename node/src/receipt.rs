//! Receipts (小票): plain text for 58 mm and 80 mm thermal printers (32 and 48 columns, a
//! Chinese character taking two) and a printable HTML page, in Chinese, with the member's
//! masked phone, points used and earned and the balances left. What a sale printed is built
//! from the views at print time; the layouts here are pure.

use std::fmt::Write;

use protocol::Fen;
use protocol::pricing::Step;
use protocol::sale::Tender;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Paper widths a till prints on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    Mm58,
    Mm80,
}

impl Paper {
    pub fn columns(self) -> usize {
        match self {
            Paper::Mm58 => 32,
            Paper::Mm80 => 48,
        }
    }

    pub fn millimetres(self) -> u32 {
        match self {
            Paper::Mm58 => 58,
            Paper::Mm80 => 80,
        }
    }
}

/// Everything a receipt shows, resolved (names looked up, phone masked, time local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub store_name: String,
    pub store_id: String,
    pub sale_id: String,
    /// Local time, "2026-11-28 18:30".
    pub time: String,
    pub cashier: String,
    pub served_by: Option<String>,
    /// Masked phone (138****1234) and name.
    pub member: Option<String>,
    pub lines: Vec<ReceiptLine>,
    pub subtotal: Fen,
    pub discount: Fen,
    pub due: Fen,
    pub tenders: Vec<Tender>,
    pub points_used: u64,
    pub points_earned: i64,
    /// Stored value and points left after the sale (at print time).
    pub balance: Option<(Fen, u64)>,
    /// 推荐码: the member's referral code, for a friend to register with (拓客).
    pub referral_code: Option<String>,
    /// Returns made against the sale: date, store, amount.
    pub returns: Vec<(String, String, Fen)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLine {
    pub name: String,
    /// "3", "1.25"
    pub qty: String,
    pub unit_price: Fen,
    pub gross: Fen,
    pub steps: Vec<(Step, Fen)>,
    pub net: Fen,
}

pub fn step_label(step: Step) -> &'static str {
    match step {
        Step::Special => "特价",
        Step::Bundle => "套餐优惠",
        Step::Tier => "会员折扣",
        Step::Birthday => "生日折扣",
        Step::Coupon => "优惠券",
        Step::Points => "积分抵现",
        Step::Override => "改价",
    }
}

fn tender_label(t: &Tender) -> &'static str {
    match t {
        Tender::Cash { .. } => "现金",
        Tender::Card { .. } => "银行卡",
        Tender::WeChat { .. } => "微信支付",
        Tender::Alipay { .. } => "支付宝",
        Tender::StoredValue { .. } => "储值",
        Tender::ForeignCash { .. } => "外币现金",
    }
}

/// Yuan with two decimals.
pub fn yuan(f: Fen) -> String {
    let sign = if f.0 < 0 { "-" } else { "" };
    let a = f.0.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Cuts `text` to at most `width` columns.
fn clip(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars().filter(|c| !c.is_control()) {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

/// `left` and `right` on one line of `width` columns, the right flush right.
fn pair(left: &str, right: &str, width: usize) -> String {
    let right = clip(right, width);
    let room = width.saturating_sub(right.width() + 1);
    let left = clip(left, room);
    let gap = width.saturating_sub(left.width() + right.width()).max(1);
    format!("{left}{}{right}", " ".repeat(gap))
}

fn centre(text: &str, width: usize) -> String {
    let text = clip(text, width);
    let pad = width.saturating_sub(text.width()) / 2;
    format!("{}{text}", " ".repeat(pad))
}

impl Receipt {
    /// The tenders' change (cash only).
    fn change(&self) -> Fen {
        Fen(self
            .tenders
            .iter()
            .map(|t| match t {
                Tender::Cash { change, .. } | Tender::ForeignCash { change, .. } => change.0,
                _ => 0,
            })
            .sum())
    }

    /// The receipt as plain text, `paper` wide; every line fits.
    pub fn text(&self, paper: Paper) -> String {
        let w = paper.columns();
        let rule = "-".repeat(w);
        let mut out = Vec::new();
        out.push(centre(&self.store_name, w));
        out.push(centre(&format!("门店 {}", self.store_id), w));
        out.push(rule.clone());
        out.push(clip(&format!("单号：{}", self.sale_id), w));
        out.push(clip(&format!("时间：{}", self.time), w));
        let mut staff = format!("收银：{}", self.cashier);
        if let Some(s) = &self.served_by {
            staff.push_str(&format!("  服务：{s}"));
        }
        out.push(clip(&staff, w));
        if let Some(m) = &self.member {
            out.push(clip(&format!("会员：{m}"), w));
        }
        out.push(rule.clone());
        for l in &self.lines {
            out.push(clip(&l.name, w));
            // ASCII "x": thermal printers print "×" (GBK A1C1) two columns wide.
            let each = format!("  {} x {}", l.qty, yuan(l.unit_price));
            out.push(pair(&each, &yuan(l.gross), w));
            for (step, off) in &l.steps {
                out.push(pair(
                    &format!("  {}", step_label(*step)),
                    &yuan(Fen(-off.0)),
                    w,
                ));
            }
        }
        out.push(rule.clone());
        out.push(pair("合计", &yuan(self.subtotal), w));
        if self.discount.0 != 0 {
            out.push(pair("优惠", &yuan(Fen(-self.discount.0)), w));
        }
        out.push(pair("应付", &yuan(self.due), w));
        for t in &self.tenders {
            let paid = match t {
                Tender::Cash { tendered, .. } => *tendered,
                Tender::ForeignCash { value, .. } => *value,
                other => other.amount(),
            };
            out.push(pair(tender_label(t), &yuan(paid), w));
            if let Tender::ForeignCash {
                currency,
                amount,
                rate,
                ..
            } = t
            {
                out.push(clip(
                    &format!("  {currency} {} @{rate}", yuan(Fen(*amount))),
                    w,
                ));
            }
        }
        let change = self.change();
        if change.0 != 0 {
            out.push(pair("找零", &yuan(change), w));
        }
        if self.member.is_some() {
            out.push(rule.clone());
            if self.points_used > 0 {
                out.push(pair("积分抵现", &format!("{} 分", self.points_used), w));
            }
            out.push(pair("本次积分", &format!("+{}", self.points_earned), w));
            if let Some((stored, points)) = self.balance {
                out.push(pair("储值余额", &yuan(stored), w));
                out.push(pair("积分余额", &points.to_string(), w));
            }
            if let Some(code) = &self.referral_code {
                out.push(pair("推荐码", code, w));
            }
        }
        if !self.returns.is_empty() {
            out.push(rule.clone());
            for (date, store, amount) in &self.returns {
                out.push(pair(&format!("退货 {date} {store}"), &yuan(*amount), w));
            }
        }
        out.push(rule);
        out.push(centre("谢谢惠顾，欢迎再次光临", w));
        let mut text = out.join("\n");
        text.push('\n');
        text
    }

    /// The receipt as a page to print from the browser, sized for `paper`.
    pub fn html(&self, paper: Paper) -> String {
        let mut rows = String::new();
        let row = |rows: &mut String, class: &str, left: &str, right: &str| {
            let _ = write!(
                rows,
                "<tr class=\"{class}\"><td>{}</td><td class=\"r\">{}</td></tr>",
                escape(left),
                escape(right)
            );
        };
        for l in &self.lines {
            row(&mut rows, "name", &l.name, "");
            row(
                &mut rows,
                "",
                &format!("{} × {}", l.qty, yuan(l.unit_price)),
                &yuan(l.gross),
            );
            for (step, off) in &l.steps {
                row(&mut rows, "step", step_label(*step), &yuan(Fen(-off.0)));
            }
        }
        let mut totals = String::new();
        row(&mut totals, "", "合计", &yuan(self.subtotal));
        if self.discount.0 != 0 {
            row(&mut totals, "", "优惠", &yuan(Fen(-self.discount.0)));
        }
        row(&mut totals, "due", "应付", &yuan(self.due));
        for t in &self.tenders {
            let paid = match t {
                Tender::Cash { tendered, .. } => *tendered,
                Tender::ForeignCash { value, .. } => *value,
                other => other.amount(),
            };
            row(&mut totals, "", tender_label(t), &yuan(paid));
        }
        if self.change().0 != 0 {
            row(&mut totals, "", "找零", &yuan(self.change()));
        }
        if self.member.is_some() {
            if self.points_used > 0 {
                row(
                    &mut totals,
                    "",
                    "积分抵现",
                    &format!("{} 分", self.points_used),
                );
            }
            row(
                &mut totals,
                "",
                "本次积分",
                &format!("+{}", self.points_earned),
            );
            if let Some((stored, points)) = self.balance {
                row(&mut totals, "", "储值余额", &yuan(stored));
                row(&mut totals, "", "积分余额", &points.to_string());
            }
            if let Some(code) = &self.referral_code {
                row(&mut totals, "", "推荐码", code);
            }
        }
        for (date, store, amount) in &self.returns {
            row(
                &mut totals,
                "",
                &format!("退货 {date} {store}"),
                &yuan(*amount),
            );
        }
        let mut head = format!(
            "<p>单号：{}<br>时间：{}<br>收银：{}",
            escape(&self.sale_id),
            escape(&self.time),
            escape(&self.cashier)
        );
        if let Some(s) = &self.served_by {
            let _ = write!(head, "　服务：{}", escape(s));
        }
        if let Some(m) = &self.member {
            let _ = write!(head, "<br>会员：{}", escape(m));
        }
        head.push_str("</p>");
        let mm = paper.millimetres();
        format!(
            "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<title>小票 {sale}</title><style>\
@page {{ size: {mm}mm auto; margin: 0 }}\
body {{ width: {mm}mm; margin: 0 auto; padding: 2mm; box-sizing: border-box; \
font: 12px/1.4 \"Noto Sans CJK SC\", \"Microsoft YaHei\", monospace }}\
h1 {{ font-size: 15px; text-align: center; margin: 0 }} .store {{ text-align: center }}\
table {{ width: 100%; border-collapse: collapse; border-top: 1px dashed #000 }}\
td.r {{ text-align: right; white-space: nowrap }} tr.step td {{ padding-left: 1em; color: #444 }}\
tr.due td {{ font-weight: bold }} .thanks {{ text-align: center; margin-top: 2mm }}\
</style></head><body>\n<h1>{name}</h1><div class=\"store\">门店 {store}</div>\n{head}\n\
<table>{rows}</table>\n<table>{totals}</table>\n<p class=\"thanks\">谢谢惠顾，欢迎再次光临</p>\n\
</body></html>\n",
            sale = escape(&self.sale_id),
            name = escape(&self.store_name),
            store = escape(&self.store_id),
        )
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
// Amounts in fen are written yuan_fen (100_00 is 100 yuan).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            store_name: "人民广场旗舰店（上海黄浦区南京东路一号）".into(),
            store_id: "S001".into(),
            sale_id: "S001-00000042".into(),
            time: "2026-11-28 18:30".into(),
            cashier: "c01".into(),
            served_by: Some("stylist-3".into()),
            member: Some("138****1234 张三".into()),
            lines: vec![ReceiptLine {
                name: "农夫山泉天然饮用水 550ml 整箱 24 瓶装 <特惠>".into(),
                qty: "3".into(),
                unit_price: Fen(2_00),
                gross: Fen(6_00),
                steps: vec![(Step::Tier, Fen(60))],
                net: Fen(5_40),
            }],
            subtotal: Fen(6_00),
            discount: Fen(60),
            due: Fen(5_40),
            tenders: vec![
                Tender::Cash {
                    tendered: Fen(5_00),
                    change: Fen(60),
                },
                Tender::WeChat {
                    amount: Fen(1_00),
                    reference: "42".into(),
                },
            ],
            points_used: 0,
            points_earned: 5,
            balance: Some((Fen(45_14), 120)),
            referral_code: Some("R0123456789".into()),
            returns: vec![("2026-11-29".into(), "S002".into(), Fen(1_80))],
        }
    }

    #[test]
    fn every_line_fits_the_paper_and_says_what_was_paid() {
        let r = receipt();
        for paper in [Paper::Mm58, Paper::Mm80] {
            let text = r.text(paper);
            for line in text.lines() {
                assert!(line.width() <= paper.columns(), "{paper:?}: {line:?}");
            }
            assert!(text.contains("会员：138****1234 张三"), "{text}");
            assert!(text.contains("会员折扣"));
            assert!(text.contains("-0.60"));
            assert!(text.contains("找零"));
            assert!(text.contains("储值余额"));
            assert!(text.contains("45.14"));
            assert!(text.contains("+5"));
            assert!(text.contains("R0123456789"), "the referral code: {text}");
        }
        let text = r.text(Paper::Mm58);
        assert!(
            text.lines()
                .any(|l| l == format!("应付{}5.40", " ".repeat(32 - 4 - 4))),
            "{text}"
        );
    }

    #[test]
    fn odd_text_does_not_break_the_layout() {
        let mut r = receipt();
        r.store_name = "☕\u{fe0f}".repeat(40);
        r.lines[0].name = "\u{1f468}\u{200d}\u{1f469}".repeat(30);
        for paper in [Paper::Mm58, Paper::Mm80] {
            assert!(r.text(paper).lines().count() > 10);
        }
    }

    #[test]
    fn html_is_escaped_and_sized() {
        let html = receipt().html(Paper::Mm80);
        assert!(html.contains("width: 80mm"));
        assert!(html.contains("&lt;特惠&gt;"));
        assert!(!html.contains("<特惠>"));
        assert!(html.contains("138****1234"));
    }

    #[test]
    fn yuan_has_two_decimals() {
        assert_eq!(yuan(Fen(5)), "0.05");
        assert_eq!(yuan(Fen(-1_80)), "-1.80");
        assert_eq!(yuan(Fen(123_45)), "123.45");
    }
}
